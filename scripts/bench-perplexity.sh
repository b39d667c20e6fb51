#!/bin/bash
# Perplexity throughput of smelt (and of llama-perplexity when LLAMA_PERPLEXITY names a binary
# you built yourself; nothing here builds llama.cpp). Tokens/s are marginal: the wall-time
# difference between a 20-chunk and a 4-chunk run (8,192 tokens at -c 512), so loading the
# model and tokenizing the text cancel out. Run on an idle machine.
#   scripts/bench-perplexity.sh MODEL.gguf TEXT [threads] [repeats]
set -euo pipefail
model=$1; text=$2; threads=${3:-2}; reps=${4:-3}
smelt=${SMELT:-.build/release/smelt}
wall() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
for r in $(seq "$reps"); do
  for tool in smelt llama; do
    if [ $tool = smelt ]; then cmd=("$smelt" perplexity "$model" -f "$text" -c 512 -t "$threads" --chunks)
    elif [ -n "${LLAMA_PERPLEXITY:-}" ]; then cmd=("$LLAMA_PERPLEXITY" -m "$model" -f "$text" -c 512 -t "$threads" --chunks)
    else continue; fi
    a=$(wall "${cmd[@]}" 4); b=$(wall "${cmd[@]}" 20)
    printf '%s %s %s: 4 chunks %.2f s, 20 chunks %.2f s, %.0f tokens/s (load %s)\n' "$(date -u +%H:%M:%S)" \
      "$(basename "$model")" $tool "$a" "$b" "$(echo "8192 / ($b - $a)" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done

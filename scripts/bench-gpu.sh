#!/usr/bin/env bash
# GPU quantization benchmark: runs unchanged on any machine with a Vulkan GPU (or lavapipe).
#   scripts/bench-gpu.sh [DEVICE] [MIB] [MODEL.gguf]
# DEVICE: vulkan (default: the best device) or vulkan:N (see `smelt devices`); MIB: float32 input per
# type (default 512). BANDWIDTH_GBPS=<the GPU's memory bandwidth> adds the fraction reached.
# With MODEL (an F32/F16/BF16 GGUF) it also times `smelt quantize` on the CPU and the GPU for
# Q8_0, Q4_0 and IQ4_XS and checks that the files are byte-identical.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${1:-vulkan}
MIB=${2:-512}
MODEL=${3:-}
swift build -c release --product smelt >/dev/null
SMELT=.build/release/smelt
echo "== devices"
$SMELT devices
echo "== kernel throughput (input GB/s; rows of 4096; GPU bytes checked against the CPU)"
BW=()
[ -n "${BANDWIDTH_GBPS:-}" ] && BW=(--bandwidth "$BANDWIDTH_GBPS")
$SMELT bench quantize --device "$DEVICE" --mib "$MIB" --imatrix "${BW[@]}"
if [ -n "$MODEL" ]; then
  echo "== smelt quantize $MODEL: CPU vs $DEVICE"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  in_bytes=$(stat -c %s "$MODEL")
  for T in Q8_0 Q4_0 IQ4_XS; do
    for dev in cpu "$DEVICE"; do
      s=$(date +%s.%N)
      $SMELT quantize "$MODEL" "$tmp/$T-${dev//:/_}.gguf" "$T" --device "$dev" >/dev/null 2>"$tmp/err" \
        || { cat "$tmp/err" >&2; exit 1; }
      e=$(date +%s.%N)
      awk -v t="$T" -v d="$dev" -v s="$s" -v e="$e" -v b="$in_bytes" \
        'BEGIN { printf "%-7s %-10s %8.2f s  %7.3f GB/s of input\n", t, d, e - s, b / (e - s) / 1e9 }'
    done
    if cmp -s "$tmp/$T-cpu.gguf" "$tmp/$T-${DEVICE//:/_}.gguf"; then echo "$T: byte-identical"; else echo "$T: FILES DIFFER"; exit 1; fi
  done
fi

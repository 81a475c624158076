#!/usr/bin/env bash
# What exact kernels cost on the CPU: the block-cost curve (a pass of 1 to 64 tokens; 64 stands for prefill)
# of the default build (llamafile's tinyBLAS off) against CLLM_FAST_KERNELS=1 (tinyBLAS on), rebuilding the
# addon in turn (seconds with ccache, which keeps both builds of ggml's CPU backend), two rounds each, A B A B.
# Leaves the default build in place. Usage: bench/exact-kernels-cost.sh [OUT]   (MODELS, ROUNDS=30, THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/exact-kernels-cost}
MODELS=${MODELS:-"../shared/models/stories260K.gguf ../shared/models/pycoder-16m.gguf"}
ROUNDS=${ROUNDS:-30}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
trap 'CLLM_FAST_KERNELS=0 npm run -s build:native > /dev/null' EXIT
for round in 1 2; do
  for fast in 0 1; do
    CLLM_FAST_KERNELS=$fast npm run -s build:native > "$OUT/build.log" 2>&1
    for model in $MODELS; do
      name=$(basename "$model" .gguf)
      echo "== $name, CLLM_FAST_KERNELS=$fast, round $round"
      npm run -s bench:block-cost -- -m "$model" --threads "$THREADS" --rounds "$ROUNDS" --json "$OUT/$name-fast$fast-round$round.json" | tail -8
    done
  done
done

#!/usr/bin/env bash
# What sampling costs in speed: `cllm bench` with greedy decoding (--temp 0) and with llama-cli's default
# sampling (--temp 0.8, top-k 40, top-p 0.95, min-p 0.05; seed 1), on stories260K's story openers and
# pycoder-16m's held-out code prompts. Each bench checks every output against AR with the same seed.
# Usage: bench/sampling-speed.sh [OUT]   (LIMIT=10 prompts, TOKENS=128, THREADS=2, BLOCKS=4,16)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/sampling-speed}
LIMIT=${LIMIT:-10}
TOKENS=${TOKENS:-128}
THREADS=${THREADS:-2}
BLOCKS=${BLOCKS:-4,16}
mkdir -p "$OUT"
for model in stories260K pycoder-16m; do
  if [ "$model" = stories260K ]; then set_args=(--set stories); else set_args=(--prompts ../shared/data/code-prompts-heldout.jsonl); fi
  for temp in 0 0.8; do
    echo "== $model, --temp $temp"
    node bin/cllm.js bench -m "../shared/models/$model.gguf" "${set_args[@]}" --limit "$LIMIT" --max-tokens "$TOKENS" \
      --threads "$THREADS" --block "$BLOCKS" --temp "$temp" --seed 1 --json "$OUT/$model-temp$temp.json" | tee "$OUT/$model-temp$temp.txt"
  done
done

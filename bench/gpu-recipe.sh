#!/usr/bin/env bash
# The CLLM recipe at scale on one GPU: true Jacobi trajectories of thousands of prompts, collected in
# PyTorch, then two CLLMs trained for the same steps: one on the collected states, one on noisy blocks made
# from the same fixed points and refreshed by the model (JacobiForcing). Writes the models and logs to $RUN.
# Evaluate them with `cllm eval` and `cllm bench` (bench/make-cllm.sh's measures) on any machine.
# Usage: BASE=... TOKENIZER=... CORPUS=python-train.txt bench/gpu-recipe.sh   (sizes below, from the environment)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-../shared/models/pycoder-16m.gguf}
TOKENIZER=${TOKENIZER:-${BASE%.gguf}.tokenizer.json}
CORPUS=${CORPUS:?the training text: python-train.txt, decompressed}
RUN=${RUN:-runs/gpu-recipe}
PROMPTS=${PROMPTS:-4000}        # prompts cut from the corpus, PER_FILE a file
PER_FILE=${PER_FILE:-2}
COLLECT_BATCH=${COLLECT_BATCH:-256}
STEPS=${STEPS:-600}
BATCH=${BATCH:-32}
STATES=${STATES:-8}
WINDOWS=${WINDOWS:-8}
LR=${LR:-2e-4}
VARIANTS=${VARIANTS:-collected noisy}
mkdir -p "$RUN"

python3 train/collect.py --base "$BASE" --tokenizer "$TOKENIZER" --corpus "$CORPUS" --per-file "$PER_FILE" --limit "$PROMPTS" \
  --batch "$COLLECT_BATCH" --seed 1 -o "$RUN/trajectories.jsonl" 2>&1 | tee "$RUN/collect.log"
for variant in $VARIANTS; do
  flags=(); [ "$variant" = noisy ] && flags=(--noisy --refresh)
  python3 train/train.py --base "$BASE" --data "$RUN/trajectories.jsonl" -o "$RUN/cllm-$variant.gguf" --steps "$STEPS" --batch "$BATCH" \
    --states "$STATES" --lr "$LR" --corpus "$CORPUS" --tokenizer "$TOKENIZER" --windows "$WINDOWS" --seed 1 "${flags[@]}" 2>&1 | tee "$RUN/train-$variant.log"
done

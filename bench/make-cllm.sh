#!/usr/bin/env bash
# The whole CLLM recipe on one base model, with the figures it is judged by: collect Jacobi trajectories,
# train, then held-out loss, tokens per step and speed of base and CLLM, and how much of the CLLM's greedy
# output is the base's. Everything lands in $OUT (git-ignored), logs included.
# Usage: bench/make-cllm.sh [BASE.gguf]   (settings below can be overridden from the environment)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${1:-../shared/models/pycoder-16m.gguf}
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/recipe}
PROMPTS=${PROMPTS:-400}        # training prompts to collect trajectories on
BLOCK=${BLOCK:-16}
STEPS=${STEPS:-400}
BATCH=${BATCH:-16}
LR=${LR:-3e-4}
AR_WEIGHT=${AR_WEIGHT:-10}
THREADS=${THREADS:-2}
EVAL_DOCS=${EVAL_DOCS:-100}    # held-out files for the loss
BENCH_PROMPTS=${BENCH_PROMPTS:-30}
cllm() { node bin/cllm.js "$@"; }
mkdir -p "$OUT"

if [ ! -s "$OUT/trajectories.jsonl" ] || [ -n "${RESUME:-}" ]; then
  echo "== collect ($PROMPTS prompts, block $BLOCK)"
  cllm collect -m "$BASE" --prompts "$DATA/code-prompts-train.jsonl" --limit "$PROMPTS" --block "$BLOCK" --max-tokens 256 \
    --threads "$THREADS" -o "$OUT/trajectories.jsonl" ${RESUME:+--resume} 2>&1 | tee "$OUT/collect.log"
fi

echo "== train ($STEPS steps of $BATCH, lr $LR, AR weight $AR_WEIGHT)"
cllm train --base "$BASE" --data "$OUT/trajectories.jsonl" -o "$OUT/cllm.gguf" --steps "$STEPS" --batch "$BATCH" \
  --lr "$LR" --ar-weight "$AR_WEIGHT" --threads "$THREADS" 2>&1 | tee "$OUT/train.log"

for name in base cllm; do
  model=$([ $name = base ] && echo "$BASE" || echo "$OUT/cllm.gguf")
  echo "== $name: held-out loss ($EVAL_DOCS files)"
  cllm eval -m "$model" --text "$DATA/python-heldout.txt" --limit "$EVAL_DOCS" --threads "$THREADS" --json > "$OUT/eval-$name.json"
  node -e 'const r = require(process.argv[1]); console.log(`${r.natsPerToken.toFixed(4)} nats/token over ${r.tokens} tokens`)' "$(realpath "$OUT/eval-$name.json")"
  echo "== $name: bench ($BENCH_PROMPTS held-out prompts)"
  cllm bench -m "$model" --prompts "$DATA/code-prompts-heldout.jsonl" --limit "$BENCH_PROMPTS" --block 2,3,4,8,16,32 \
    --max-tokens 128 --repeat 1 --threads "$THREADS" --json "$OUT/bench-$name.json" | tee "$OUT/bench-$name.txt"
done

echo "== greedy agreement of the CLLM with the base"
node --import tsx bench/greedy-agreement.ts --base "$BASE" --model "$OUT/cllm.gguf" --prompts "$DATA/code-prompts-heldout.jsonl" \
  --max-tokens 128 --threads "$THREADS" --json "$OUT/agreement.json"

#!/usr/bin/env bash
# The whole CLLM recipe on one base model, with the figures it is judged by: collect Jacobi trajectories,
# train (with a checkpoint every SAVE_EVERY steps), then held-out loss and tokens per step of the base, every
# checkpoint and the CLLM, `cllm bench` against AR for base and CLLM, and how much of the CLLM's greedy
# output is the base's. Everything lands in $OUT (git-ignored), logs included.
# Usage: bench/make-cllm.sh [BASE.gguf]   (the settings below can be overridden from the environment)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${1:-../shared/models/pycoder-16m.gguf}
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/recipe}
PROMPTS=${PROMPTS:-200}         # training prompts to collect trajectories on
BLOCK=${BLOCK:-16}
STEPS=${STEPS:-300}
BATCH=${BATCH:-8}
LR=${LR:-1e-4}
AR_WEIGHT=${AR_WEIGHT:-10}
SAVE_EVERY=${SAVE_EVERY:-100}
TRAIN_FLAGS=${TRAIN_FLAGS:---ar-target base --replay 128 --freeze-embeddings}
THREADS=${THREADS:-2}
EVAL_DOCS=${EVAL_DOCS:-100}     # held-out files for the loss
BENCH_PROMPTS=${BENCH_PROMPTS:-20}
BEST=${BEST:-cllm}              # the model to bench against AR: cllm, or a checkpoint such as cllm-step100
cllm() { node bin/cllm.js "$@"; }
mkdir -p "$OUT"

if [ ! -s "$OUT/trajectories.jsonl" ]; then
  echo "== collect ($PROMPTS prompts, block $BLOCK)"
  cllm collect -m "$BASE" --prompts "$DATA/code-prompts-train.jsonl" --limit "$PROMPTS" --block "$BLOCK" --max-tokens 256 \
    --threads "$THREADS" -o "$OUT/trajectories.jsonl" 2>&1 | tee "$OUT/collect.log"
fi

echo "== train ($STEPS steps of $BATCH, lr $LR, AR weight $AR_WEIGHT, $TRAIN_FLAGS)"
# shellcheck disable=SC2086
cllm train --base "$BASE" --data "$OUT/trajectories.jsonl" -o "$OUT/cllm.gguf" --steps "$STEPS" --batch "$BATCH" --lr "$LR" \
  --ar-weight "$AR_WEIGHT" --save-every "$SAVE_EVERY" --threads "$THREADS" $TRAIN_FLAGS 2>&1 | tee "$OUT/train.log"

echo "== held-out loss ($EVAL_DOCS files) and tokens per step at block $BLOCK ($BENCH_PROMPTS held-out prompts)"
echo "model  nats/token  tokens/step"
for model in "$BASE" $(ls "$OUT"/cllm-step*.gguf 2>/dev/null | sort -V) "$OUT/cllm.gguf"; do
  name=$(basename "$model" .gguf)
  cllm eval -m "$model" --text "$DATA/python-heldout.txt" --limit "$EVAL_DOCS" --threads "$THREADS" --json > "$OUT/eval-$name.json"
  cllm bench -m "$model" --prompts "$DATA/code-prompts-heldout.jsonl" --limit "$BENCH_PROMPTS" --decoders jacobi --block "$BLOCK" \
    --max-tokens 128 --repeat 1 --threads "$THREADS" --json "$OUT/tps-$name.json" > /dev/null
  node -e 'const [e, b] = process.argv.slice(2).map((f) => require(f)); console.log(process.argv[1], e.natsPerToken.toFixed(4), b.summary[0].tokensPerStep.toFixed(2))' \
    "$name" "$(realpath "$OUT/eval-$name.json")" "$(realpath "$OUT/tps-$name.json")"
done

for model in "$BASE" "$OUT/$BEST.gguf"; do
  name=$(basename "$model" .gguf)
  echo "== $name: cllm bench against AR"
  cllm bench -m "$model" --prompts "$DATA/code-prompts-heldout.jsonl" --limit "$BENCH_PROMPTS" --block 2,3,4,8,16,32 \
    --max-tokens 128 --repeat 1 --threads "$THREADS" --json "$OUT/bench-$name.json" | tee "$OUT/bench-$name.txt"
done

echo "== greedy agreement of the CLLM with the base"
node --import tsx bench/greedy-agreement.ts --base "$BASE" --model "$OUT/$BEST.gguf" --prompts "$DATA/code-prompts-heldout.jsonl" \
  --max-tokens 128 --threads "$THREADS" --json "$OUT/agreement-$BEST.json"

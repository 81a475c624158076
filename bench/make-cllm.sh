#!/usr/bin/env bash
# The CLLM recipe on one base model, seeded, with the figures it is judged by. On a CPU:
#   1. cut prompts from real training text (file prefixes, PER_FILE a file) and collect the base's greedy
#      output on them, block by block (train/collect.py --fixed-points-only: trajectories cost 5x more here);
#   2. train on noisy blocks made from those fixed points and refreshed by the model (JacobiForcing), with the
#      KL from the base over each whole sequence and over windows of real text as the anchor;
#   3. measure base and CLLM: held-out loss by position (cllm eval), tokens per step at block 16 over all and
#      over non-degenerate outputs (cllm bench, which also checks every output against AR), `auto` against
#      AR on the CLLM, and the frontier plot.
# Everything lands in $RUN (git-ignored), logs included; the final model is $RUN/cllm.gguf.
# Usage: bench/make-cllm.sh [BASE.gguf]   (the settings below can be overridden from the environment)
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${1:-../shared/models/pycoder-16m.gguf}
TOKENIZER=${TOKENIZER:-${BASE%.gguf}.tokenizer.json}
DATA=${DATA:-../shared/data}
RUN=${RUN:-runs/recipe}
PROMPTS=${PROMPTS:-800}         # training prompts, cut from $DATA/python-train.txt.xz
PER_FILE=${PER_FILE:-2}
BLOCK=${BLOCK:-16}
STEPS=${STEPS:-240}
BATCH=${BATCH:-4}
STATES=${STATES:-32}
WINDOWS=${WINDOWS:-1}
LR=${LR:-2e-4}
TRAIN_FLAGS=${TRAIN_FLAGS:---noisy --refresh}
THREADS=${THREADS:-2}
SEED=${SEED:-0}
EVAL_DOCS=${EVAL_DOCS:-100}     # held-out files for the loss
BENCH_PROMPTS=${BENCH_PROMPTS:-100}
AUTO_PROMPTS=${AUTO_PROMPTS:-20}
cllm() { node bin/cllm.js "$@"; }
mkdir -p "$RUN"
start=$(date +%s)
elapsed() { echo "[$(( ($(date +%s) - start) / 60 )) min]"; }

[ -s "$RUN/python-train.txt" ] || xz -dc "$DATA/python-train.txt.xz" > "$RUN/python-train.txt"
echo "== collect $(elapsed): the base's fixed points on $PROMPTS prompts, block $BLOCK"
[ -s "$RUN/fixed-points.jsonl" ] && echo "(kept from an earlier run: $RUN/fixed-points.jsonl)" ||
python3 train/collect.py --base "$BASE" --tokenizer "$TOKENIZER" --corpus "$RUN/python-train.txt" --per-file "$PER_FILE" \
  --limit "$PROMPTS" --block "$BLOCK" --max-tokens 256 --fixed-points-only --threads "$THREADS" --seed "$SEED" \
  -o "$RUN/fixed-points.jsonl" 2>&1 | tee "$RUN/collect.log"

echo "== train $(elapsed): $STEPS steps of $BATCH prompts x $STATES states + $WINDOWS windows, lr $LR, $TRAIN_FLAGS"
# shellcheck disable=SC2086
python3 train/train.py --base "$BASE" --data "$RUN/fixed-points.jsonl" -o "$RUN/cllm.gguf" --steps "$STEPS" --batch "$BATCH" \
  --states "$STATES" --lr "$LR" --corpus "$RUN/python-train.txt" --tokenizer "$TOKENIZER" --windows "$WINDOWS" \
  --threads "$THREADS" --seed "$SEED" $TRAIN_FLAGS 2>&1 | tee "$RUN/train.log"

echo "== measure $(elapsed): held-out loss ($EVAL_DOCS files), tokens per step at block $BLOCK ($BENCH_PROMPTS held-out prompts)"
points=()
for model in "$BASE" "$RUN/cllm.gguf"; do
  name=$(basename "$model" .gguf)
  cllm eval -m "$model" --text "$DATA/python-heldout.txt" --limit "$EVAL_DOCS" --threads "$THREADS" --json > "$RUN/eval-$name.json"
  cllm bench -m "$model" --prompts "$DATA/code-prompts-heldout.jsonl" --limit "$BENCH_PROMPTS" --decoders jacobi --block "$BLOCK" \
    --max-tokens 128 --repeat 1 --threads "$THREADS" --json "$RUN/tps-$name.json" | tee "$RUN/tps-$name.txt"
  points+=("$name=$RUN/eval-$name.json,$RUN/tps-$name.json")
done
node --import tsx bench/frontier.ts --base "$(basename "$BASE" .gguf)" --out "$RUN/frontier.svg" "${points[@]}" | tee "$RUN/frontier.md"

echo "== auto and Jacobi against AR on the CLLM $(elapsed) ($AUTO_PROMPTS prompts, $THREADS threads)"
cllm bench -m "$RUN/cllm.gguf" --prompts "$DATA/code-prompts-heldout.jsonl" --limit "$AUTO_PROMPTS" --decoders ar,auto,jacobi \
  --block "$BLOCK" --max-tokens 128 --repeat 1 --threads "$THREADS" --json "$RUN/bench-cllm.json" | tee "$RUN/bench-cllm.txt"
echo "== done $(elapsed)"

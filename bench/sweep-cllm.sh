#!/usr/bin/env bash
# Speed against quality: trains one CLLM per AR weight on the same trajectories, and prints, for each, the
# held-out loss and the tokens per step of Jacobi decoding at block 16 on held-out prompts.
# Usage: bench/sweep-cllm.sh TRAJECTORIES.jsonl "1 3 10 30" [extra cllm train flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_FILE=$1
WEIGHTS=$2
shift 2
BASE=${BASE:-../shared/models/pycoder-16m.gguf}
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/sweep}
THREADS=${THREADS:-2}
EVAL_DOCS=${EVAL_DOCS:-20}
BENCH_PROMPTS=${BENCH_PROMPTS:-20}
cllm() { node bin/cllm.js "$@"; }
mkdir -p "$OUT"

measure() {  # model name -> "nats/token tokens/step"
  cllm eval -m "$1" --text "$DATA/python-heldout.txt" --limit "$EVAL_DOCS" --threads "$THREADS" --json > "$OUT/eval-$2.json"
  cllm bench -m "$1" --prompts "$DATA/code-prompts-heldout.jsonl" --limit "$BENCH_PROMPTS" --decoders jacobi --block 16 \
    --max-tokens 128 --repeat 1 --threads "$THREADS" --json "$OUT/bench-$2.json" > /dev/null
  node -e 'const [e, b] = process.argv.slice(1).map((f) => require(f)); console.log(e.natsPerToken.toFixed(4), b.summary[0].tokensPerStep.toFixed(2))' \
    "$(realpath "$OUT/eval-$2.json")" "$(realpath "$OUT/bench-$2.json")"
}

echo "ar-weight  nats/token  tokens/step@16"
echo "base       $(measure "$BASE" base)"
for w in $WEIGHTS; do
  cllm train --base "$BASE" --data "$DATA_FILE" -o "$OUT/cllm-ar$w.gguf" --ar-weight "$w" --threads "$THREADS" "$@" > "$OUT/train-ar$w.log" 2>&1
  echo "$w          $(measure "$OUT/cllm-ar$w.gguf" "ar$w")"
done

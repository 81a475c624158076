#!/usr/bin/env bash
# The recorded runs of --decoder auto on this CPU: auto beside AR and fixed Jacobi blocks with `cllm bench` on
# stories260K's story prompts, pycoder-16m's held-out code prompts and the chat fixture; each draft source
# alone; auto on the CLLM made by bench/make-cllm.sh (when runs/recipe/ holds it). JSON and logs go to OUT.
# Usage: bench/auto-cpu.sh [OUT] (env: THREADS=2 LIMIT=30 REPEAT=3 TOKENS=256)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/auto-cpu}
threads=${THREADS:-2}
limit=${LIMIT:-30}
repeat=${REPEAT:-3}
tokens=${TOKENS:-256}
models=../shared/models
mkdir -p "$out"
uptime | tee "$out/uptime.txt"

bench() { # NAME ARGS...: one `cllm bench`, its table in NAME.txt and its JSON in NAME.json
  local name=$1
  shift
  echo "== $name" >&2
  node bin/cllm.js bench --threads "$threads" --repeat "$repeat" --max-tokens "$tokens" --json "$out/$name.json" "$@" | tee "$out/$name.txt"
}

bench stories -m "$models/stories260K.gguf" --limit "$limit" --decoders ar,auto,jacobi --block 2,4
bench pycoder-code -m "$models/pycoder-16m.gguf" --prompts ../shared/data/code-prompts-heldout.jsonl --limit "$limit" --decoders ar,auto,jacobi --block 4
bench chat-fixture -m test/fixtures/tiny-random-llama.gguf --set chat --decoders ar,auto,jacobi --block 4
if [ -f runs/recipe/cllm-step100.gguf ]; then
  bench cllm-code -m runs/recipe/cllm-step100.gguf --prompts ../shared/data/code-prompts-heldout.jsonl --limit 10 --decoders ar,auto,jacobi --block 2,4,8,16
fi
echo "== sources alone" >&2
node --import tsx bench/sources-alone.ts -m "$models/pycoder-16m.gguf" --prompts ../shared/data/code-prompts-heldout.jsonl \
  --limit 10 --threads "$threads" --max-tokens "$tokens" | tee "$out/sources-alone.txt"

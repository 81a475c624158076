#!/usr/bin/env bash
# What a block costs over llama.cpp's RPC backend: the block-cost curve (a pass of 1 to 64 tokens) of a model
# decoded here and of the same model spread over two ggml-rpc-server processes on loopback, in one run.
# Usage: bench/rpc-cost.sh [OUT]   (MODELS="stories260K pycoder-16m", THREADS=2, ROUNDS=30)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/rpc-cost}
MODELS=${MODELS:-stories260K pycoder-16m}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-30}
mkdir -p "$OUT"
servers=()
trap 'kill "${servers[@]}" 2>/dev/null || true' EXIT
endpoints=()
for port in 50252 50253; do
  build/bin/ggml-rpc-server -H 127.0.0.1 -p "$port" -t "$THREADS" > "$OUT/server-$port.log" 2>&1 &
  servers+=($!)
  endpoints+=("127.0.0.1:$port")
done
sleep 1
rpc=$(IFS=,; echo "${endpoints[*]}")
for model in $MODELS; do
  for where in local rpc; do
    args=(-m "../shared/models/$model.gguf" --threads "$THREADS" --rounds "$ROUNDS" --json "$OUT/$model-$where.json")
    [ "$where" = rpc ] && args+=(--rpc "$rpc")
    echo "== $model, $where"
    npm run -s bench:block-cost -- "${args[@]}" | tail -9
  done
done

#!/usr/bin/env bash
# The GPU measurements, as one script for one call on a lent GPU machine (see bench/results/README.md,
# "CUDA"): builds cllm there (the backend it picks itself), then, on pycoder-16m in F16 and Q8_0,
#  - exactness: `cllm bench` (ar, auto, Jacobi blocks 2-64) on the held-out code prompts, with exact
#    kernels (the default) and with --fast-kernels, sampled (T 0.8), and with exact kernels but ggml-cuda's
#    fusion left on;
#  - the block-cost curve with exact and with fast kernels;
#  - llama.cpp's own llama-bench (tg), from the same build, beside cllm's AR.
# Every step is time-boxed so that the whole run ends before DEADLINE seconds; results go to $OUT.
# Usage (from the project root, after `source .gpu-carry/setup.sh`): bench/gpu.sh
#   env: OUT (default runs/gpu), MODELS (default $CLLM_MODELS or ../shared/models), PROMPTS (held-out code
#        prompts JSONL), LIMIT=12, TOKENS=256, DEADLINE=560, CLLM_GPU/CMAKE_CUDA_ARCHITECTURES (else picked)
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
OUT=${OUT:-runs/gpu}
MODELS=${MODELS:-${CLLM_MODELS:-../shared/models}}
PROMPTS=${PROMPTS:-../shared/data/code-prompts-heldout.jsonl}
LIMIT=${LIMIT:-12}
TOKENS=${TOKENS:-256}
DEADLINE=${DEADLINE:-560}
mkdir -p "$OUT"
log() { echo "== +$(( $(date +%s) - start ))s $*" | tee -a "$OUT/steps.txt"; }
# Runs a command or function under the smaller of its own budget and the time left; SIGINT (to the whole
# process group) lets cllm bench stop and still write what it measured.
step() {
  local budget=$1; shift
  local left=$(( DEADLINE - ($(date +%s) - start) ))
  [ "$left" -lt "$budget" ] && budget=$left
  if [ "$budget" -lt 5 ]; then log "skipped (no time left): $*"; return; fi
  log "($budget s) $*"
  timeout -s INT -k 5 "$budget" bash -c '"$@"' _ "$@"
  local rc=$?
  [ $rc -ne 0 ] && log "exit $rc: $*"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
log "detect: $(node scripts/build-native.mjs --detect)"
# Flash attention's kernels are most of a CUDA build's time; exact contexts never use them.
export CLLM_CMAKE_ARGS="${CLLM_CMAKE_ARGS:-GGML_CUDA_FA=OFF CLLM_LLAMA_TOOLS=ON}"
step 420 node scripts/build-native.mjs > "$OUT/build.txt" 2>&1
tail -3 "$OUT/build.txt"
node bin/cllm.js info -m "$MODELS/pycoder-16m.gguf" > "$OUT/info.txt" 2>&1
cat "$OUT/info.txt"
build/bin/llama-quantize "$MODELS/pycoder-16m.gguf" "$OUT/../pycoder-16m-q8_0.gguf" Q8_0 > "$OUT/quantize.txt" 2>&1 || log "quantize failed"

cllm_bench() { # NAME MODEL [flags...]
  local name=$1 model=$2; shift 2
  node bin/cllm.js bench -m "$model" --prompts "$PROMPTS" --limit "$LIMIT" --max-tokens "$TOKENS" --repeat 1 \
    --json "$OUT/$name.json" "$@" > "$OUT/$name.txt" 2>&1
  cat "$OUT/$name.txt"
}
block_cost() { # NAME MODEL [flags...]
  local name=$1 model=$2; shift 2
  node "${BLOCK_COST:-.gpu-carry/block-cost.mjs}" -m "$model" --threads 4 --rounds 30 --json "$OUT/$name.json" "$@" > "$OUT/$name.txt" 2>&1
  cat "$OUT/$name.txt"
}
export -f cllm_bench block_cost
export OUT PROMPTS LIMIT TOKENS
F16="$MODELS/pycoder-16m.gguf"
Q8="$OUT/../pycoder-16m-q8_0.gguf"
BLOCKS=2,4,8,16,32,64

step 100 cllm_bench exact-f16 "$F16" --decoders ar,auto,jacobi --block $BLOCKS
step 60 cllm_bench fast-f16 "$F16" --decoders ar,auto,jacobi --block $BLOCKS --fast-kernels
step 30 block_cost block-cost-exact-f16 "$F16"
step 30 block_cost block-cost-fast-f16 "$F16" --fast-kernels
step 20 env GGML_CPU_BATCH_INVARIANT=0 build/bin/llama-bench -m "$F16" -p 0 -n "$TOKENS" -r 5 -o md > "$OUT/llama-bench-f16.txt" 2>&1
step 90 cllm_bench exact-q8 "$Q8" --decoders ar,jacobi --block $BLOCKS
step 40 cllm_bench fast-q8 "$Q8" --decoders ar,jacobi --block $BLOCKS --fast-kernels
step 20 env GGML_CPU_BATCH_INVARIANT=0 build/bin/llama-bench -m "$Q8" -p 0 -n "$TOKENS" -r 5 -o md > "$OUT/llama-bench-q8.txt" 2>&1
step 40 block_cost block-cost-exact-q8 "$Q8"
step 30 cllm_bench exact-sampled-f16 "$F16" --decoders ar,jacobi --block 4,16 --temp 0.8 --seed 1
step 40 env GGML_CUDA_DISABLE_FUSION=0 bash -c 'cllm_bench exact-fused-f16 "$0" --decoders ar,jacobi --block 4,16' "$F16"
cat "$OUT"/llama-bench-*.txt
log done

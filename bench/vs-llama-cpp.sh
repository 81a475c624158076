#!/usr/bin/env bash
# Runs llama.cpp's own llama-bench and llama-lookahead, built from the pinned source, beside `cllm bench` on
# the same model, threads and prompts, and prints the ratios.
# Usage: bench/vs-llama-cpp.sh [MODEL] (env: THREADS=2, TOKENS=256, PROMPTS=10)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-../shared/models/stories260K.gguf}
threads=${THREADS:-2}
tokens=${TOKENS:-256}
prompts=${PROMPTS:-10}
llama=${CLLM_LLAMA_CPP_DIR:-deps/llama.cpp}
build=$llama/build-tools
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ ! -x "$build/bin/llama-bench" ] || [ ! -x "$build/bin/llama-lookahead" ]; then
  echo "building llama-bench and llama-lookahead in $build ..." >&2
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$llama" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF "${launcher[@]}" >/dev/null
  cmake --build "$build" --target llama-bench llama-lookahead -j "$(nproc)" >/dev/null
fi

# The same story prompts for llama-lookahead and cllm.
node --input-type=module -e "
  const { STORY_OPENERS } = await import('./dist/engine/prompts.js');
  for (const p of STORY_OPENERS.slice(0, $prompts)) console.log(p);
" > "$out/prompts.txt"

echo "llama-bench: tg$tokens, $threads threads" >&2
"$build/bin/llama-bench" -m "$model" -t "$threads" -p 0 -n "$tokens" -r 5 -o json > "$out/llama-bench.json" 2>/dev/null

echo "llama-lookahead (W=15 N=5 G=15): $prompts prompts" >&2
while IFS= read -r prompt; do
  "$build/bin/llama-lookahead" -m "$model" -t "$threads" -n "$tokens" --temp 0 -p "$prompt" 2>&1 |
    sed -n 's/.*decoded *\([0-9]*\) tokens in *\([0-9.]*\) s.*/\1 \2/p' | tail -1
done < "$out/prompts.txt" > "$out/lookahead.txt"

echo "cllm bench: same prompts" >&2
node bin/cllm.js bench -m "$model" --threads "$threads" --max-tokens "$tokens" --prompts "$out/prompts.txt" \
  --decoders ar,jacobi --block 4,8,16,32 --repeat 3 --json "$out/cllm.json" >/dev/null

node --input-type=module -e "
  import { readFileSync } from 'node:fs';
  const llamaBench = JSON.parse(readFileSync('$out/llama-bench.json', 'utf8')).find((r) => r.n_gen > 0);
  const tg = llamaBench.avg_ts;
  const look = readFileSync('$out/lookahead.txt', 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number));
  const lookahead = look.reduce((a, [n]) => a + n, 0) / look.reduce((a, [, s]) => a + s, 0);
  const cllm = JSON.parse(readFileSync('$out/cllm.json', 'utf8'));
  const ar = cllm.summary.find((r) => r.decoder === 'ar');
  const best = cllm.summary.filter((r) => r.decoder === 'jacobi').sort((a, b) => b.tokensPerSecond - a.tokensPerSecond)[0];
  const row = (name, tps, ref, note = '') => console.log('| ' + name + ' | ' + tps.toFixed(0) + ' | ' + (tps / ref).toFixed(2) + 'x | ' + note + ' |');
  console.log('model $model, $threads threads, $tokens tokens, $prompts prompts, llama.cpp ' + cllm.llamaCppCommit.slice(0, 10));
  console.log('| decoder | tok/s | vs llama-bench tg | note |');
  console.log('|---|---:|---:|---|');
  row('llama-bench tg$tokens', tg, tg);
  row('llama-lookahead W=15 N=5 G=15', lookahead, tg);
  row('cllm ar', ar.tokensPerSecond, tg, 'target >= 0.95x');
  row('cllm jacobi block ' + best.block, best.tokensPerSecond, tg, best.tokensPerStep.toFixed(2) + ' tokens/step, ' + (best.tokensPerSecond / lookahead).toFixed(2) + 'x llama-lookahead');
"

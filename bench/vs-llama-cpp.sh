#!/usr/bin/env bash
# Runs llama.cpp's own llama-bench, llama-lookup (prompt lookup decoding) and llama-lookahead, built from the
# pinned source, beside `cllm bench` (ar, auto and the best Jacobi block) on the same model, prompts,
# threads and token count, and prints tok/s and the ratios.
# Usage: bench/vs-llama-cpp.sh [MODEL] [PROMPTS.jsonl]
#   env: THREADS=2 TOKENS=256 PROMPTS=10 (how many) BLOCKS=4,16 REPEAT=3
#   PROMPTS.jsonl: {"prompt": ...} a line (default: the built-in story openers)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-../shared/models/stories260K.gguf}
prompt_file=${2:-}
threads=${THREADS:-2}
tokens=${TOKENS:-256}
count=${PROMPTS:-10}
blocks=${BLOCKS:-4,16}
repeat=${REPEAT:-3}
llama=${CLLM_LLAMA_CPP_DIR:-deps/llama.cpp}
build=$llama/build-tools
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The tools build from the same source as cllm, which carries cllm's batch-invariance patch (see README,
# *Exactness*): off for them, so that they run llama.cpp's own kernels.
export GGML_CPU_BATCH_INVARIANT=0
tools=(llama-bench llama-lookup llama-lookahead)
if ! for t in "${tools[@]}"; do [ -x "$build/bin/$t" ] || exit 1; done; then
  echo "building ${tools[*]} in $build ..." >&2
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$llama" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF "${launcher[@]}" >/dev/null
  cmake --build "$build" --target "${tools[@]}" -j "$(nproc)" >/dev/null
fi

# The same prompts for every tool: one file each for llama.cpp, one JSONL for cllm.
node --input-type=module -e "
  import { readFileSync, writeFileSync } from 'node:fs';
  const { STORY_OPENERS } = await import('./dist/tasks/prompt-sets.js');
  const file = '$prompt_file';
  const all = file ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).prompt) : STORY_OPENERS;
  const prompts = all.slice(0, $count);
  prompts.forEach((p, i) => writeFileSync('$out/prompt-' + i + '.txt', p));
  writeFileSync('$out/prompts.jsonl', prompts.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
"

echo "llama-bench: tg$tokens, $threads threads" >&2
"$build/bin/llama-bench" -m "$model" -t "$threads" -p 0 -n "$tokens" -r 5 -o json > "$out/llama-bench.json" 2>/dev/null

# "decoded N tokens in S seconds" from each run of a llama.cpp example, one line per prompt.
decoded() {
  for prompt in "$out"/prompt-*.txt; do
    "$build/bin/$1" -m "$model" -t "$threads" -n "$tokens" --temp 0 -f "$prompt" "${@:2}" 2>&1 |
      sed -n 's/.*decoded *\([0-9]*\) tokens in *\([0-9.]*\) s.*/\1 \2/p' | tail -1
  done
}
echo "llama-lookup: $count prompts" >&2
decoded llama-lookup > "$out/lookup.txt"
echo "llama-lookahead (W=15 N=5 G=15): $count prompts" >&2
decoded llama-lookahead > "$out/lookahead.txt"

echo "cllm bench: same prompts" >&2
node bin/cllm.js bench -m "$model" --threads "$threads" --max-tokens "$tokens" --prompts "$out/prompts.jsonl" \
  --decoders ar,auto,jacobi --block "$blocks" --repeat "$repeat" --json "$out/cllm.json" >/dev/null

node --input-type=module -e "
  import { readFileSync } from 'node:fs';
  const tg = JSON.parse(readFileSync('$out/llama-bench.json', 'utf8')).find((r) => r.n_gen > 0).avg_ts;
  const rate = (name) => {
    const runs = readFileSync('$out/' + name + '.txt', 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number));
    return runs.reduce((a, [n]) => a + n, 0) / runs.reduce((a, [, s]) => a + s, 0);
  };
  const [lookup, lookahead] = [rate('lookup'), rate('lookahead')];
  const cllm = JSON.parse(readFileSync('$out/cllm.json', 'utf8'));
  const ar = cllm.summary.find((r) => r.decoder === 'ar');
  const auto = cllm.summary.find((r) => r.decoder === 'auto');
  const best = cllm.summary.filter((r) => r.decoder === 'jacobi').sort((a, b) => b.tokensPerSecond - a.tokensPerSecond)[0];
  const row = (name, tps, note = '') => console.log('| ' + name + ' | ' + tps.toFixed(0) + ' | ' + (tps / tg).toFixed(2) + 'x | ' + note + ' |');
  console.log('model $model, prompts ${prompt_file:-stories} ($count), $threads threads, $tokens tokens, llama.cpp ' + cllm.llamaCppCommit.slice(0, 10));
  console.log('| decoder | tok/s | vs llama-bench tg | note |');
  console.log('|---|---:|---:|---|');
  row('llama-bench tg$tokens', tg);
  row('llama-lookup', lookup);
  row('llama-lookahead W=15 N=5 G=15', lookahead);
  row('cllm ar', ar.tokensPerSecond, (ar.tokensPerSecond / tg).toFixed(2) + 'x llama-bench');
  row('cllm auto', auto.tokensPerSecond, auto.tokensPerStep.toFixed(2) + ' tokens/step; ' + (auto.tokensPerSecond / lookup).toFixed(2) + 'x llama-lookup, ' + (auto.tokensPerSecond / lookahead).toFixed(2) + 'x llama-lookahead, ' + auto.speedupVsAr.toFixed(2) + 'x cllm ar');
  row('cllm jacobi block ' + best.block, best.tokensPerSecond, best.tokensPerStep.toFixed(2) + ' tokens/step');
"

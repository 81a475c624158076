// Where the time of a plain decoding step goes, layer by layer, against llama.cpp's own llama-bench on the
// same build, model and threads. Each layer generates the same tokens one by one from the same prompt:
//   decodeNow      the addon's pass on the calling thread (llama_decode, choosing the token, the N-API crossing)
//   decode         the same pass on the context's own thread, awaited (adds the hand-over and back)
//   Context        cllm's evaluator (what the decoders call: it picks one of the two above)
//   generate ar    the whole decoding loop of `cllm run --decoder ar`
// "forward" is the time inside llama_decode; the rest of a step is host time. The layers take turns in every
// round so that machine drift hits all alike.
// Usage: node --import tsx bench/ar-step.ts [-m MODEL] [--threads 2] [--tokens 128] [--rounds 10]
//          [--fast-kernels] [--llama-bench PATH]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { native } from '../src/engine/addon.js';
import { median } from '../src/tasks/bench.js';
import { generate } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { Sequence } from '../src/engine/sequence.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', short: 'm', default: process.env.CLLM_MODEL ?? '../shared/models/stories260K.gguf' },
    threads: { type: 'string', default: '2' },
    tokens: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '10' },
    'fast-kernels': { type: 'boolean', default: false },
    'llama-bench': { type: 'string' },
  },
});
const threads = Number(args.threads);
const tokens = Number(args.tokens);
const rounds = Number(args.rounds);
const exact = !args['fast-kernels'];

// llama-bench runs before the model loads and after it is freed: a context's CPU workers poll for new
// work a while after each pass, and would take a core from it.
function llamaBench(): number | undefined {
  if (!args['llama-bench']) return undefined;
  // A llama-bench built from cllm's patched source runs llama.cpp's own kernels with the switch off.
  const env = { ...process.env, GGML_CPU_BATCH_INVARIANT: '0' };
  const out = execFileSync(args['llama-bench'], ['-m', args.model!, '-t', String(threads), '-p', '0', '-n', String(tokens), '-r', '5', '-o', 'json'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(out).find((r: { n_gen: number }) => r.n_gen > 0).avg_ts;
}
const before = llamaBench();
const model = await Model.load(args.model);
const context = model.createContext({ contextSize: 512, threads, exact });
// The raw addon context under cllm's Context: the first two layers call it directly.
const raw = (context as unknown as { raw: import('../src/engine/addon.js').RawContext }).raw;
const prompt = Array.from(model.tokenize('Once upon a time'));

/** Generates `tokens` tokens after the prompt; returns milliseconds in all and inside llama_decode. */
type Layer = () => Promise<{ ms: number; forward: number }>;
async function rawLoop(step: (token: Int32Array, position: number) => Promise<{ chosen: Int32Array; decodeMs: number }>) {
  context.rollback(prompt.length - 1);
  let token = prompt[prompt.length - 1];
  let forward = 0;
  const t0 = performance.now();
  for (let i = 0; i < tokens; i++) {
    const result = await step(Int32Array.of(token), prompt.length - 1 + i);
    token = result.chosen[0];
    forward += result.decodeMs;
  }
  return { ms: performance.now() - t0, forward };
}
const layers: [string, Layer][] = [
  ['decodeNow', () => rawLoop(async (t, p) => raw.decodeNow(t, p, { outputs: 'chosen' }))],
  ['decode', () => rawLoop((t, p) => raw.decode(t, p, { outputs: 'chosen' }))],
  ['Context', () => rawLoop((t, p) => context.decode(t, p).then((r) => ({ chosen: r.chosen, decodeMs: r.decodeMs ?? 0 })))],
  [
    'generate ar',
    async () => {
      const sequence = new Sequence(context);
      context.rollback(0);
      await sequence.append(prompt);
      const result = await generate(sequence, { decoder: 'ar', maxTokens: tokens });
      return { ms: result.decodeMs, forward: result.forwardMs };
    },
  ],
];

await context.prefill(prompt.slice(0, -1), 0);
const samples = new Map(layers.map(([name]) => [name, { ms: [] as number[], forward: [] as number[] }]));
for (let round = -2; round < rounds; round++) {
  for (const [name, layer] of layers) {
    const { ms, forward } = await layer();
    if (round < 0) continue; // warm-up: caches, thread pools, graph reuse
    samples.get(name)!.ms.push(ms / tokens);
    samples.get(name)!.forward.push(forward / tokens);
  }
}
model.dispose();
const after = llamaBench();

const build = native().buildInfo();
const tg = before && after ? (before + after) / 2 : undefined;
console.log(`AR step: ${args.model}, ${threads} threads, ${tokens} tokens x ${rounds} rounds, ${exact ? 'exact' : 'fast'} kernels, backend ${build.backend}, llama.cpp ${build.llamaCppCommit.slice(0, 10)}`);
console.log('| layer | ms per token | inside llama_decode | host share | tok/s | vs llama-bench tg |');
console.log('|---|---:|---:|---:|---:|---:|');
if (tg) console.log(`| llama-bench tg${tokens} (before ${before!.toFixed(0)}, after ${after!.toFixed(0)} tok/s) | ${(1000 / tg).toFixed(3)} | | | ${tg.toFixed(0)} | 1.00x |`);
for (const [name] of layers) {
  const { ms, forward } = samples.get(name)!;
  const step = median(ms);
  const inside = median(forward);
  const versus = tg ? `${(1000 / step / tg).toFixed(2)}x` : '';
  console.log(`| ${name} | ${step.toFixed(3)} | ${inside.toFixed(3)} | ${(100 * (1 - inside / step)).toFixed(1)}% | ${(1000 / step).toFixed(0)} | ${versus} |`);
}

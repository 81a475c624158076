// The cost curve Jacobi decoding must beat: the time of one forward pass over a block of n tokens,
// relative to a block of 1. Each sample is the mean of a burst of passes of one size, as in decoding, where
// llama.cpp reuses the compute graph of the previous pass of the same shape; the sizes take turns in every
// round so that machine drift hits all alike.
// Usage: npm run bench:block-cost -- [-m MODEL] [--threads 2] [--rounds 100] [--gpu-layers N] [--fast-kernels]
//          [--rpc host:port,...] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { native } from '../src/engine/addon.js';
import { median } from '../src/tasks/bench.js';
import { Model } from '../src/engine/model.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', short: 'm', default: process.env.CLLM_MODEL ?? '../shared/models/stories260K.gguf' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '100' },
    'gpu-layers': { type: 'string', default: '-1' },
    'fast-kernels': { type: 'boolean', default: false },
    rpc: { type: 'string' },
    json: { type: 'string' },
  },
});
const BLOCKS = [1, 2, 3, 4, 6, 8, 12, 16, 32, 64];
const BURST = 10;
const PROMPT_TOKENS = 64;
const threads = Number(args.threads);
const rounds = Number(args.rounds);

const rpc = args.rpc?.split(',');
const exact = !args['fast-kernels'];
const model = await Model.load(args.model, { gpuLayers: Number(args['gpu-layers']), rpc });
const context = model.createContext({ contextSize: 512, threads, exact });
const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => 3 + ((i * 37) % (model.info.vocabularySize - 3)));
await context.decode(prompt, 0);

const samples = new Map<number, number[]>(BLOCKS.map((b) => [b, []]));
for (let round = -10; round < rounds; round++) {
  for (const block of BLOCKS) {
    const tokens = Int32Array.from(prompt.slice(0, block));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BURST; i++) {
      await context.decode(tokens, PROMPT_TOKENS);
      context.rollback(PROMPT_TOKENS);
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / BURST;
    if (round >= 0) samples.get(block)!.push(ms); // the first rounds warm up caches and thread pools
  }
}
model.dispose();

const base = median(samples.get(1)!);
const rows = BLOCKS.map((block) => {
  const ms = median(samples.get(block)!);
  return { block, medianMs: +ms.toFixed(4), vsBlock1: +(ms / base).toFixed(2), msPerToken: +(ms / block).toFixed(4) };
});
const build = native().buildInfo();
const where = `backend ${build.backend}${rpc ? ` over RPC (${rpc.join(', ')})` : ''}, ${exact ? 'exact' : 'fast'} kernels`;
console.log(`block decode cost: ${model.info.path}, ${threads} threads, ${rounds} rounds of ${BURST} passes, ${where}, context at ${PROMPT_TOKENS} tokens`);
console.log('| block | median ms | vs block 1 | ms per token |');
console.log('|------:|----------:|-----------:|-------------:|');
for (const r of rows) console.log(`| ${r.block} | ${r.medianMs.toFixed(3)} | ${r.vsBlock1.toFixed(2)}x | ${r.msPerToken.toFixed(3)} |`);
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ model: args.model, threads, rounds, backend: build.backend, rpc, exact, llamaCppCommit: build.llamaCppCommit, date: new Date().toISOString(), rows }, null, 2) + '\n');
}

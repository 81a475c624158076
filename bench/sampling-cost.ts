// What sampling adds to a forward pass: a block of 16 tokens decoded greedily and with several sampling
// settings, in interleaved bursts in one process, so that machine drift hits every setting alike. The
// sampler runs per position in the addon (penalties, truncations, Gumbel-max), after the model's pass.
// Usage: npm run bench:sampling-cost -- [-m MODEL] [--block 16] [--threads 2] [--rounds 200]
import { parseArgs } from 'node:util';
import { median } from '../src/tasks/bench.js';
import { Model } from '../src/engine/model.js';
import { describeSampling, samplingSettings, type SamplingOptions } from '../src/engine/sampling.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', short: 'm', default: process.env.CLLM_MODEL ?? '../shared/models/stories260K.gguf' },
    block: { type: 'string', default: '16' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '200' },
  },
});
const BURST = 10;
const PROMPT_TOKENS = 64;
const block = Number(args.block);
const rounds = Number(args.rounds);

const settings: Partial<SamplingOptions>[] = [
  { temperature: 0 },
  { temperature: 0.8 }, // llama-cli's defaults: top-k 40, top-p 0.95, min-p 0.05
  { temperature: 0.8, repeatPenalty: 1.1 },
  { temperature: 0.8, topK: 0, topP: 1, minP: 0 }, // no truncation: the Gumbel race over every candidate
  { temperature: 0.8, topK: 0, topP: 0.95, minP: 0 }, // top-p without top-k: a sort of the candidates
];

const model = await Model.load(args.model);
const context = model.createContext({ contextSize: 512, threads: Number(args.threads) });
const vocabulary = model.info.vocabularySize;
const prompt = Array.from({ length: PROMPT_TOKENS + block }, (_, i) => 3 + ((i * 37) % (vocabulary - 3)));
await context.decode(prompt.slice(0, PROMPT_TOKENS), 0);
const tokens = Int32Array.from(prompt.slice(PROMPT_TOKENS));

const samples = settings.map(() => [] as number[]);
for (let round = -10; round < rounds; round++) {
  for (const [k, some] of settings.entries()) {
    const sampling = samplingSettings({ ...some, seed: 1 });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BURST; i++) {
      await context.decode(tokens, PROMPT_TOKENS, { sampling });
      context.rollback(PROMPT_TOKENS);
    }
    if (round >= 0) samples[k].push(Number(process.hrtime.bigint() - t0) / 1e6 / BURST);
  }
}
model.dispose();

const greedy = median(samples[0]);
console.log(`sampling cost: ${args.model}, block ${block}, ${args.threads} threads, ${rounds} rounds of ${BURST} passes, vocabulary ${vocabulary}`);
console.log('| sampling | median ms per pass | vs greedy |');
console.log('|---|---:|---:|');
for (const [k, some] of settings.entries()) {
  const ms = median(samples[k]);
  console.log(`| ${describeSampling(samplingSettings(some), { seed: false })} | ${ms.toFixed(3)} | ${(ms / greedy).toFixed(3)}x |`);
}

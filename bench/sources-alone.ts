// What each draft source of --decoder auto gives alone: the planner with that one source, beside plain
// decoding and the planner with every source, in interleaved rounds on one context. Prints tokens per step
// and the median paired speedup over AR, and checks every output against AR's.
// Usage: node --import tsx bench/sources-alone.ts -m MODEL [--prompts FILE.jsonl] [--limit N] [--max-tokens N] [--threads N] [--repeat N]
import { parseArgs } from 'node:util';
import { readPromptFile } from '../src/cli/files.js';
import { median } from '../src/tasks/bench.js';
import { CostModel } from '../src/engine/drafters/cost-model.js';
import { drawFromText } from '../src/engine/drafters/fill.js';
import { complete, type GenerateOptions } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { Planner } from '../src/engine/drafters/planner.js';
import { STORY_OPENERS } from '../src/tasks/prompt-sets.js';
import { Sequence } from '../src/engine/sequence.js';
import { JacobiTail } from '../src/engine/sources/jacobi-tail.js';
import { NgramPool } from '../src/engine/sources/ngram-pool.js';
import { SuffixMatch } from '../src/engine/sources/suffix-match.js';
import { TokenRecycling } from '../src/engine/sources/token-recycling.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', short: 'm' },
    prompts: { type: 'string' },
    limit: { type: 'string', default: '10' },
    'max-tokens': { type: 'string', default: '256' },
    threads: { type: 'string', default: '2' },
    repeat: { type: 'string', default: '2' },
  },
});
if (!args.model) throw new Error('usage: bench/sources-alone.ts -m MODEL [--prompts FILE.jsonl] [--limit N] [--max-tokens N] [--threads N] [--repeat N]');
const texts = args.prompts ? readPromptFile(args.prompts).map((p) => ('prompt' in p ? p.prompt : p.messages.map((m) => m.content).join('\n'))) : STORY_OPENERS;
const maxTokens = Number(args['max-tokens']);

const model = await Model.load(args.model);
const context = model.createContext({ contextSize: 2048, threads: Number(args.threads) });
const sequence = new Sequence(context);
await sequence.append([model.info.bos]);
const cost = await CostModel.calibrate(context, sequence.cached, sequence.pending);

const variants: [string, () => Partial<GenerateOptions>][] = [
  ['ar', () => ({ decoder: 'ar' })],
  ['auto (every source)', () => ({ drafter: new Planner(cost) })],
  ['jacobi tail', () => ({ drafter: new Planner(cost, [new JacobiTail(drawFromText(), 16)]) })],
  ['suffix match', () => ({ drafter: new Planner(cost, [new SuffixMatch()]) })],
  ['n-gram pool (with the tail that fills it)', () => ({ drafter: new Planner(cost, [new NgramPool(), new JacobiTail(drawFromText(), 16)]) })],
  ['token recycling', () => ({ drafter: new Planner(cost, [new TokenRecycling()]) })],
];
const rows = variants.map(() => ({ tokens: 0, steps: 0, speedups: [] as number[], identical: 0, runs: 0 }));
for (const text of texts.slice(0, Number(args.limit))) {
  const prompt = Array.from(model.tokenize(text));
  for (let r = 0; r < Number(args.repeat); r++) {
    let arRate = 0;
    let arTokens: number[] = [];
    for (const [i, [, options]] of variants.entries()) {
      sequence.reset();
      const { result } = await complete(sequence, prompt, { maxTokens, ...options() });
      const rate = result.tokens.length / result.decodeMs;
      if (i === 0) [arRate, arTokens] = [rate, result.tokens];
      const row = rows[i];
      row.tokens += result.tokens.length;
      row.steps += result.steps;
      row.speedups.push(rate / arRate);
      row.runs++;
      if (result.tokens.every((t, k) => t === arTokens[k]) && result.tokens.length === arTokens.length) row.identical++;
    }
  }
}
console.log(`${args.model}, ${Math.min(texts.length, Number(args.limit))} prompts x ${args.repeat}, ${maxTokens} tokens, ${args.threads} threads`);
console.log('| drafts from | tokens/step | speedup vs AR (median, min) | identical to AR |');
console.log('|---|---:|---:|---:|');
for (const [i, [name]] of variants.entries()) {
  const row = rows[i];
  console.log(`| ${name} | ${(row.tokens / row.steps).toFixed(2)} | ${median(row.speedups).toFixed(2)}x, ${Math.min(...row.speedups).toFixed(2)}x | ${row.identical}/${row.runs} |`);
}
model.dispose();

// The leak soak's generations, in a process of their own (see soak.test.ts): `node --expose-gc --import tsx
// test/support/soak-run.ts WARM_UP COUNT` prints the lowest resident memory (bytes) over the last 50 generations of
// the warm-up and of the COUNT generations after it, as JSON.
import { complete } from '../../src/engine/generate.js';
import { Model } from '../../src/engine/model.js';
import { Sequence } from '../../src/engine/sequence.js';
import { storiesModel } from './models.js';

const PROMPTS = ['Once upon a time', 'Tom and Lily went to the park', 'The little dog was sad because', 'One day, a big bird'];
const [warmUp, count] = process.argv.slice(2).map(Number);
const WINDOW = 50;

const model = await Model.load(storiesModel);
const context = model.createContext({ contextSize: 256, threads: 1 });
const sequence = new Sequence(context);
// All three decoders, greedy and sampled, as a long chat session or a server would run them.
const generate = async (i: number) => {
  sequence.reset();
  const decoder = (['ar', 'jacobi', 'auto'] as const)[i % 3];
  const prompt = model.tokenize(PROMPTS[i % PROMPTS.length]);
  const { result } = await complete(sequence, Array.from(prompt), { decoder, block: 8, maxTokens: 16, sampling: { temperature: i % 2 ? 0.8 : 0, seed: i } });
  model.detokenize(result.tokens);
};
// V8 collects old garbage only now and then, and pools grow and shrink back between generations: the lowest
// reading after a full collection is what stays allocated.
const collectGarbage = (globalThis as { gc?: () => void }).gc!;
const lowestRss = async (from: number, to: number) => {
  let lowest = Infinity;
  for (let i = from; i < to; i++) {
    await generate(i);
    if (i < to - WINDOW) continue;
    collectGarbage();
    lowest = Math.min(lowest, process.memoryUsage().rss);
  }
  return lowest;
};
const before = await lowestRss(0, warmUp);
const after = await lowestRss(warmUp, warmUp + count);
model.dispose();
console.log(JSON.stringify({ before, after }));

// 500 generations in one process, as a long chat session or a server would run them: the resident memory
// after them stays within 5% of what it was after a warm-up.
import { describe, expect, it } from 'vitest';
import { complete } from '../src/engine/jacobi.js';
import { Model } from '../src/engine/model.js';
import { Sequence } from '../src/engine/sequence.js';
import { haveStories, storiesModel } from './models.js';

const PROMPTS = ['Once upon a time', 'Tom and Lily went to the park', 'The little dog was sad because', 'One day, a big bird'];

describe.skipIf(!haveStories)('leak soak', () => {
  it('500 generations grow the resident memory by less than 5%', async () => {
    const model = await Model.load(storiesModel);
    const context = model.createContext({ contextSize: 256, threads: 1 });
    const sequence = new Sequence(context);
    const generate = async (i: number) => {
      sequence.reset();
      const decoder = (['ar', 'jacobi', 'auto'] as const)[i % 3];
      const prompt = model.tokenize(PROMPTS[i % PROMPTS.length]);
      const { result } = await complete(sequence, Array.from(prompt), { decoder, block: 8, maxTokens: 16, sampling: { temperature: i % 2 ? 0.8 : 0, seed: i } });
      model.detokenize(result.tokens);
    };
    // The allocators' pools and V8's heap settle over the first few hundred generations, then stay flat.
    const WARM_UP = 250;
    for (let i = 0; i < WARM_UP; i++) await generate(i);
    const before = process.memoryUsage().rss;
    for (let i = WARM_UP; i < WARM_UP + 500; i++) await generate(i);
    const after = process.memoryUsage().rss;
    model.dispose();
    console.log(`soak: RSS ${(before / 2 ** 20).toFixed(1)} MiB after ${WARM_UP} generations, ${(after / 2 ** 20).toFixed(1)} MiB after 500 more`);
    expect(after / before).toBeLessThan(1.05);
  }, 300_000);
});

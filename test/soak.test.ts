// Leak soak: hundreds of generations in one process, as a long chat session or a server would run them,
// must not grow the resident memory. A leak of even a few KB per generation (a sampler, a batch, a
// detokenizer buffer) shows up as a steady climb over 500 of them.
import { describe, expect, it } from 'vitest';
import { generate } from '../src/engine/jacobi.js';
import { Model } from '../src/engine/model.js';
import { Sequence } from '../src/engine/sequence.js';
import { haveStories, storiesModel } from './models.js';

const GENERATIONS = 500;
const WARM_UP = 50;
const PROMPTS = ['Once upon a time', 'The little dog', 'Lily wanted to', 'One day, a bird', 'Tom and his mom'];

function settledRss(): number {
  globalThis.gc?.();
  return process.memoryUsage().rss;
}

describe.skipIf(!haveStories)('leak soak', () => {
  it(`${GENERATIONS} generations in one process grow RSS by less than 5% after a warm-up`, async () => {
    const model = await Model.load(storiesModel);
    let context = model.createContext({ contextSize: 256, threads: 1 });
    let baseline = 0;
    let tokens = 0;
    for (let i = 0; i < GENERATIONS; i++) {
      if (i === WARM_UP) baseline = settledRss();
      // The chat command keeps its context; a new conversation or a new command makes a new one.
      if (i % 50 === 49) {
        context.dispose();
        context = model.createContext({ contextSize: 256, threads: 1 });
      }
      const sequence = new Sequence(context);
      sequence.reset();
      await sequence.append(Array.from(model.tokenize(PROMPTS[i % PROMPTS.length])));
      const sampled = i % 2 === 1;
      const result = await generate(sequence, {
        decoder: i % 3 === 0 ? 'ar' : 'jacobi',
        maxTokens: 16,
        sampling: sampled ? { temperature: 0.8, seed: i } : { temperature: 0 },
      });
      model.detokenize(result.tokens);
      tokens += result.tokens.length;
    }
    const end = settledRss();
    context.dispose();
    model.dispose();
    expect(tokens).toBeGreaterThan(GENERATIONS * 4);
    const growth = (end - baseline) / baseline;
    console.log(`RSS after warm-up ${(baseline / 2 ** 20).toFixed(1)} MiB, at the end ${(end / 2 ** 20).toFixed(1)} MiB: ${(growth * 100).toFixed(2)}%`);
    expect(growth).toBeLessThan(0.05);
  }, 180_000);
});

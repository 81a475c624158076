// Exact kernels, checked where exactness comes from: in an exact context, a pass of n tokens computes each
// token's logits bit for bit as a pass of that token alone does, for every width, so that even the top-2
// margin (the logit gap that a near-tie turns on) is the same float. Checked on each model's weight type,
// at a short context and past 512 cached tokens, where one-token flash attention would split its work.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../src/engine/context.js';
import { Model } from '../src/engine/model.js';
import { STORY_OPENERS } from '../src/tasks/prompt-sets.js';
import { fixtureModel, havePycoder, haveStories, pycoderModel, storiesModel } from './support/models.js';

const WIDTHS = [2, 3, 4, 5, 6, 7, 8, 16, 33, 64];

/** The chosen token and its top-2 margin after each of `tokens` (fed from `start`), one token per pass. */
async function oneByOne(context: Context, tokens: number[], start: number) {
  const chosen: number[] = [];
  const margins: number[] = [];
  for (const [i, token] of tokens.entries()) {
    const r = await context.decode([token], start + i, { margins: true });
    chosen.push(r.chosen[0]);
    margins.push(r.margins![0]);
  }
  context.rollback(start);
  return { chosen, margins };
}

/** The first width and index where a pass of that width differs from one token at a time, or []. */
async function differences(context: Context, tokens: number[], start: number): Promise<string[]> {
  const reference = await oneByOne(context, tokens, start);
  const found: string[] = [];
  for (const width of WIDTHS) {
    for (let at = 0; at + width <= tokens.length; at += width) {
      const r = await context.decode(tokens.slice(at, at + width), start + at, { margins: true });
      for (let i = 0; i < width; i++) {
        const k = at + i;
        if (r.chosen[i] !== reference.chosen[k] || r.margins![i] !== reference.margins[k]) {
          found.push(`width ${width}, token ${k}: chosen ${r.chosen[i]} margin ${r.margins![i]}, one by one ${reference.chosen[k]} margin ${reference.margins[k]}`);
        }
      }
    }
    context.rollback(start);
  }
  return found;
}

const cases = [
  { name: 'stories260K (F32 weights)', path: storiesModel, skip: !haveStories, contextSize: 1024 },
  { name: 'pycoder-16m (F16 weights)', path: pycoderModel, skip: !havePycoder, contextSize: 1024 },
  { name: 'the random fixture', path: fixtureModel, skip: false, contextSize: 256 },
];

for (const { name, path, skip, contextSize } of cases) {
  describe.skipIf(skip)(`exact kernels on ${name}`, () => {
    let model: Model;
    let context: Context;
    let text: number[];
    beforeAll(async () => {
      model = await Model.load(path);
      context = model.createContext({ contextSize, threads: 2 });
      // Held-out Python where ../shared has it, the built-in story openers otherwise: text, not random ids.
      const python = new URL('../../shared/data/python-heldout.txt', import.meta.url);
      const source = existsSync(python) ? readFileSync(python, 'utf8').slice(0, 20_000) : STORY_OPENERS.join('\n').repeat(4);
      text = Array.from(model.tokenize(source)).slice(0, contextSize);
    });
    afterAll(() => model.dispose());

    it(`computes every token of a pass of ${WIDTHS.join(', ')} as one token alone, at a short context`, async () => {
      context.rollback(0);
      await context.prefill(text.slice(0, 8), 0);
      expect(await differences(context, text.slice(8, 8 + 64), 8)).toEqual([]);
    });

    it.runIf(contextSize > 600)('and past 512 cached tokens', async () => {
      context.rollback(0);
      await context.prefill(text.slice(0, 600), 0);
      expect(await differences(context, text.slice(600, 600 + 64), 600)).toEqual([]);
    });

    it.runIf(contextSize > 600)("tells apart llama.cpp's own kernels, which are not (--fast-kernels)", async () => {
      const fast = model.createContext({ contextSize, threads: 2, exact: false });
      await fast.prefill(text.slice(0, 600), 0);
      expect((await differences(fast, text.slice(600, 600 + 64), 600)).length).toBeGreaterThan(0);
      fast.dispose();
      context.dispose();
      context = model.createContext({ contextSize, threads: 2 }); // the CPU switch is process-wide: the last context decides
    });
  });
}

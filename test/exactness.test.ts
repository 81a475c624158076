// Jacobi output must be token-for-token identical to autoregressive output on real models, with no
// tolerance: on the CPU a pass of several tokens computes every logit with the same kernels, in the same
// order, as a one-token pass (native/patches/ggml-cpu-batch-invariant.patch), so even near-ties agree.
// `npm test` checks a sample of the prompts, blocks and seeds below; `npm run test:full` all of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPromptFile } from '../src/cli/files.js';
import type { Context } from '../src/engine/context.js';
import { CostModel } from '../src/engine/drafters/cost-model.js';
import { drawFromText } from '../src/engine/drafters/fill.js';
import { complete, firstDivergence, type GenerateOptions, type GenerateResult } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { Planner } from '../src/engine/drafters/planner.js';
import { describeSampling, samplingSettings, type SamplingOptions } from '../src/engine/sampling.js';
import { STORY_OPENERS } from '../src/tasks/prompt-sets.js';
import { Sequence } from '../src/engine/sequence.js';
import { JacobiTail } from '../src/engine/sources/jacobi-tail.js';
import { NgramPool } from '../src/engine/sources/ngram-pool.js';
import { SuffixMatch } from '../src/engine/sources/suffix-match.js';
import { TokenRecycling } from '../src/engine/sources/token-recycling.js';
import { codePrompts, fixtureModel, havePycoder, haveStories, pycoderModel, storiesModel } from './support/models.js';
import { scaled, spread } from './support/scale.js';

const BLOCKS = scaled([2, 4, 8, 16, 32], [2, 7, 16]);
const MAX_TOKENS = scaled(256, 128);
const PROMPTS = spread(STORY_OPENERS, 5);

/** Loads a model for one describe block, with a context of `contextSize` tokens. */
function loadModel(path: string, contextSize: number): { model: Model; context: Context } {
  const loaded = {} as { model: Model; context: Context };
  beforeAll(async () => {
    loaded.model = await Model.load(path);
    loaded.context = loaded.model.createContext({ contextSize, threads: 2 });
  });
  afterAll(() => loaded.model.dispose());
  return loaded;
}

/** "prompt 3 block 8: token 17 is 42, AR 43, lead 0.0012", or undefined where the outputs are identical. */
function difference(where: string, reference: GenerateResult, tokens: number[]): string | undefined {
  const d = firstDivergence(reference, tokens);
  return d && `${where}: token ${d.index} is ${d.got}, AR ${d.expected}, lead ${d.margin}`;
}

const cases = [
  { name: 'stories260K', path: storiesModel, skip: !haveStories },
  { name: 'random fixture', path: fixtureModel, skip: false },
];

for (const { name, path, skip } of cases) {
  describe.skipIf(skip)(`exactness on ${name}`, () => {
    const loaded = loadModel(path, 512);

    it(`matches greedy decoding for ${PROMPTS.length} prompts x blocks 1, ${BLOCKS.join(', ')} x ${MAX_TOKENS} tokens`, async () => {
      const sequence = new Sequence(loaded.context);
      const differences: string[] = [];
      let compared = 0;
      let generated = 0;
      for (const [i, prompt] of PROMPTS.entries()) {
        const tokens = Array.from(loaded.model.tokenize(prompt));
        sequence.reset();
        const greedy = (await complete(sequence, tokens, { decoder: 'ar', maxTokens: MAX_TOKENS, margins: true })).result;
        expect(greedy.tokens.length).toBeGreaterThan(0);
        for (const block of BLOCKS) {
          sequence.reset();
          const jacobi = (await complete(sequence, tokens, { decoder: 'jacobi', block, maxTokens: MAX_TOKENS })).result;
          compared++;
          generated += jacobi.tokens.length;
          const different = difference(`prompt ${i} block ${block}`, greedy, jacobi.tokens);
          if (different) differences.push(different);
        }
      }
      console.log(`${name}: ${compared} Jacobi runs (${generated} tokens) compared with greedy; ${differences.length} differ${differences.length ? ':\n  ' + differences.join('\n  ') : ''}`);
      expect(differences).toEqual([]);
    }, 900_000);
  });
}

// --decoder auto and every draft source alone, on both real models. A fixed cost model that makes passes
// nearly free forces wide trees, so that every tree shape the planner can build gets verified: branches
// accepted off the main chain, re-fed tokens, EOS and the context's end inside a tree.
const TREE_MAX_TOKENS = scaled(128, 96);
const nearlyFree = () => new CostModel([[1, 1], [64, 1.05]], 0);
const drafters: [string, () => Partial<GenerateOptions>][] = [
  ['auto', () => ({ decoder: 'auto' })],
  ['all sources, wide trees', () => ({ drafter: new Planner(nearlyFree(), undefined, 24) })],
  ['jacobi tail', () => ({ drafter: new Planner(nearlyFree(), [new JacobiTail(drawFromText(), 15)], 24) })],
  ['suffix matching', () => ({ drafter: new Planner(nearlyFree(), [new SuffixMatch()], 24) })],
  ['n-gram pool', () => ({ drafter: new Planner(nearlyFree(), [new NgramPool(), new JacobiTail(drawFromText(), 7)], 24) })],
  ['token recycling', () => ({ drafter: new Planner(nearlyFree(), [new TokenRecycling()], 24) })],
];
const treeCases = [
  { name: 'stories260K', path: storiesModel, skip: !haveStories, prompts: () => spread(STORY_OPENERS.slice(0, 30), 4) },
  { name: 'pycoder-16m', path: pycoderModel, skip: !havePycoder, prompts: () => spread(readPromptFile(codePrompts).slice(0, 12), 3).map((p) => ('prompt' in p ? p.prompt : '')) },
];

for (const { name, path, skip, prompts } of treeCases) {
  describe.skipIf(skip)(`draft trees on ${name}`, () => {
    const loaded = loadModel(path, 1024);

    for (const [label, options] of drafters) {
      it(`${label}: matches greedy decoding`, async () => {
        const sequence = new Sequence(loaded.context);
        const differences: string[] = [];
        let steps = 0;
        let generated = 0;
        for (const [i, prompt] of prompts().entries()) {
          const tokens = Array.from(loaded.model.tokenize(prompt));
          sequence.reset();
          const greedy = (await complete(sequence, tokens, { decoder: 'ar', maxTokens: TREE_MAX_TOKENS, margins: true })).result;
          sequence.reset();
          const drafted = (await complete(sequence, tokens, { maxTokens: TREE_MAX_TOKENS, ...options() })).result;
          steps += drafted.steps;
          generated += drafted.tokens.length;
          const different = difference(`prompt ${i}`, greedy, drafted.tokens);
          if (different) differences.push(different);
        }
        console.log(`${name}, ${label}: ${generated} tokens in ${steps} passes (${(generated / steps).toFixed(2)} a pass); ${differences.length} differ${differences.length ? ':\n  ' + differences.join('\n  ') : ''}`);
        expect(differences).toEqual([]);
      }, 900_000);
    }
  });
}

// Sampling at T > 0 stays exact: for the same seed, Jacobi blocks and auto's draft trees give the very
// sample that autoregressive decoding gives (the sampler's noise is keyed by position, native/sampler.cpp).
const SAMPLED_TOKENS = 128;
const SAMPLED_BLOCKS = scaled([2, 8, 16], [3, 16]);
const SEEDS = scaled([1, 2, 3], [7]);
const samplings: Partial<SamplingOptions>[] = [
  { temperature: 0.3, topK: 40, topP: 0.9, minP: 0 },
  { temperature: 0.8, topK: 40, topP: 0.9, minP: 0 },
  { temperature: 1.2, topK: 40, topP: 0.9, minP: 0 },
  { temperature: 0.8, repeatPenalty: 1.1, minP: 0 },
];
const sampledCases = [
  { name: 'stories260K', path: storiesModel, skip: !haveStories, prompts: () => spread(STORY_OPENERS.slice(0, 30), 10) },
  { name: 'pycoder-16m', path: pycoderModel, skip: !havePycoder, prompts: () => spread(readPromptFile(codePrompts).slice(0, 30), 6).map((p) => ('prompt' in p ? p.prompt : '')) },
];

for (const { name, path, skip, prompts } of sampledCases) {
  describe.skipIf(skip)(`sampling on ${name}`, () => {
    const loaded = loadModel(path, 1024);

    for (const some of samplings) {
      it(`${describeSampling(samplingSettings(some), { seed: false })}: Jacobi and auto give the autoregressive sample, seeds ${SEEDS.join(', ')}`, async () => {
        const sequence = new Sequence(loaded.context);
        const differences: string[] = [];
        let runs = 0;
        let generated = 0;
        let steps = 0;
        for (const seed of SEEDS) {
          const sampling = { ...some, seed };
          for (const [i, prompt] of prompts().entries()) {
            const tokens = Array.from(loaded.model.tokenize(prompt));
            sequence.reset();
            const reference = (await complete(sequence, tokens, { decoder: 'ar', maxTokens: SAMPLED_TOKENS, margins: true, sampling })).result;
            for (const options of [...SAMPLED_BLOCKS.map((block) => ({ decoder: 'jacobi' as const, block })), { decoder: 'auto' as const }]) {
              sequence.reset();
              const run = (await complete(sequence, tokens, { ...options, maxTokens: SAMPLED_TOKENS, sampling })).result;
              runs++;
              generated += run.tokens.length;
              steps += run.steps;
              const different = difference(`seed ${seed} prompt ${i} ${options.decoder} ${'block' in options ? options.block : ''}`, reference, run.tokens);
              if (different) differences.push(different);
            }
          }
        }
        console.log(`${name}, ${describeSampling(samplingSettings(some), { seed: false })}: ${runs} runs, ${generated} tokens, ${(generated / steps).toFixed(2)} tokens a pass; ${differences.length} differ from AR${differences.length ? ':\n  ' + differences.join('\n  ') : ''}`);
        expect(differences).toEqual([]);
      }, 1_800_000);
    }
  });
}

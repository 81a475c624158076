// Draft trees, the draft sources, acceptance rates, the cost model and the planner of --decoder auto,
// against the pure TypeScript fake model: whatever is drafted, the output must be the greedy output.
import { describe, expect, it } from 'vitest';
import { AcceptanceRates } from '../src/engine/drafters/acceptance.js';
import { CostModel } from '../src/engine/drafters/cost-model.js';
import { acceptedPath, DraftTree, layout } from '../src/engine/draft-tree.js';
import { generate, generationStats, type GenerateOptions } from '../src/engine/generate.js';
import { drawFromText } from '../src/engine/drafters/fill.js';
import { Planner } from '../src/engine/drafters/planner.js';
import { Sequence } from '../src/engine/sequence.js';
import { JacobiTail } from '../src/engine/sources/jacobi-tail.js';
import { NgramPool } from '../src/engine/sources/ngram-pool.js';
import type { DraftSource } from '../src/engine/sources/source.js';
import { SuffixMatch } from '../src/engine/sources/suffix-match.js';
import { TokenRecycling } from '../src/engine/sources/token-recycling.js';
import { EOS, FakeModel } from './support/fake-model.js';

const chaotic = (prefix: readonly number[]) => {
  let h = 2166136261;
  for (const t of prefix) h = Math.imul(h ^ t, 16777619);
  return 1 + ((h >>> 0) % 50_000);
};
// The next token depends on the last one only, so the text falls into short cycles that lookups follow.
const periodic = (prefix: readonly number[]) => 1 + ((prefix[prefix.length - 1] * 7 + 3) % 13);
// Mostly a function of the position: a guess made after a wrong token is often still right.
const mostlyPositional = (prefix: readonly number[]) =>
  prefix.length % 4 === 0 ? 1 + ((prefix[prefix.length - 1] * 7 + 3) % 97) : 1 + ((prefix.length * 5) % 97);

// Passes cost 100 ms, so that the planner's own time (measured for real, a fraction of a millisecond, more
// while the code is still cold) never weighs in: on a busy machine it once paused drafting here.
/** Every pass costs the same: the planner should score every guess it has. (Smoothing 0: fixed costs.) */
const flat = () => new CostModel([[1, 100], [64, 100]], 0);
/** A pass costs its size: no guess can pay. */
const linear = () => new CostModel([[1, 100], [2, 200]], 0);

async function run(model: FakeModel, prompt: number[], options: Partial<GenerateOptions>) {
  const sequence = new Sequence(model);
  const prefillMs = await sequence.append(prompt);
  const result = await generate(sequence, { maxTokens: 120, ...options });
  expect(model.cache).toEqual(sequence.tokens.slice(0, sequence.cached));
  expect(result.tokens).toEqual(model.greedy(prompt, options.maxTokens ?? 120));
  return { result, sequence, stats: generationStats(result, { decoder: 'auto', promptTokens: prompt.length, prefillMs }) };
}

describe('draft trees', () => {
  const tree = new DraftTree(10);
  const a = tree.add(0, 11, 0.9, 'x', 'x');
  tree.add(a, 13, 0.9, 'x', 'x');
  const b = tree.add(0, 12, 0.5, 'y', 'y');
  tree.add(b, 14, 0.5, 'y', 'y');

  it('merges equal guesses from two sources into one node', () => {
    const t = new DraftTree(1);
    const first = t.add(0, 5, 0.2, 'ngram3', 'ngram');
    expect(t.add(0, 5, 0.6, 'recycle0', 'recycle')).toBe(first);
    expect(t.nodes[first]).toMatchObject({ p: 0.6, keys: ['ngram3', 'recycle0'], source: 'ngram' });
    expect(t.size).toBe(2);
  });

  it('lays out the likeliest path as the main chain after the uncached tokens, parents first', () => {
    const pass = layout([7, 10], tree);
    expect(pass.tokens).toEqual([7, 10, 11, 13, 12, 14]);
    expect(pass.parents).toEqual([-1, 0, 1, 2, 1, 4]);
    expect(pass.root).toBe(1);
    expect(pass.mainChain).toBe(4);
    expect(pass.source).toEqual(['', '', 'x', 'x', 'y', 'y']);
  });

  it('lays out a chain without parents', () => {
    const chain = new DraftTree(3);
    chain.addChain(0, [4, 5], () => 'k', () => 0.5, 'k');
    const pass = layout([3], chain);
    expect(pass).toMatchObject({ tokens: [3, 4, 5], mainChain: 3 });
    expect(pass.parents).toBeUndefined();
  });

  it('accepts the longest path whose every guess is the argmax after its parent', () => {
    const pass = layout([7, 10], tree);
    expect(acceptedPath(pass, [0, 12, 0, 0, 14, 99])).toEqual([1, 4, 5]); // off the main chain
    expect(acceptedPath(pass, [0, 11, 13, 50, 0, 0])).toEqual([1, 2, 3]); // the whole main chain
    expect(acceptedPath(pass, [0, 99, 0, 0, 0, 0])).toEqual([1]); // no guess right
  });
});

describe('acceptance rates', () => {
  it('checks every watched tree against the committed tokens, level by level as they arrive', () => {
    const rates = new AcceptanceRates(0, 0);
    const tree = new DraftTree(1);
    tree.addChain(0, [2, 3, 4], () => 'ngram2', () => 0.5, 'ngram');
    tree.add(0, 9, 0.5, 'recycle1', 'recycle');
    rates.watch(tree, 0);
    rates.resolve([1, 2]);
    expect(rates.summary()).toEqual({ ngram2: { offered: 1, accepted: 1 }, recycle1: { offered: 1, accepted: 0 } });
    rates.resolve([1, 2, 3, 7]);
    expect(rates.summary().ngram2).toEqual({ offered: 3, accepted: 2 });
    expect(rates.rate('ngram2')).toBeCloseTo(2 / 3);
    rates.resolve([1, 2, 3, 7, 8]); // resolved trees are not counted again
    expect(rates.summary().ngram2).toEqual({ offered: 3, accepted: 2 });
  });

  it('starts every kind of guess at the prior', () => {
    expect(new AcceptanceRates(1, 3).rate('never seen')).toBeCloseTo(1 / 3);
  });
});

describe('cost model', () => {
  it('interpolates between measured sizes and extrapolates past them', () => {
    const cost = new CostModel([[1, 2], [4, 5], [8, 7]]);
    expect(cost.time(1)).toBe(2);
    expect(cost.time(2)).toBeCloseTo(3);
    expect(cost.time(6)).toBeCloseTo(6);
    expect(cost.time(16)).toBeCloseTo(11);
  });

  it('scales every size by what measured passes take, and never lets a larger pass cost less', () => {
    const cost = new CostModel([[1, 2], [2, 1.5], [4, 4]], 0.5);
    expect(cost.time(2)).toBe(2); // a disturbed measurement, evened out
    cost.observe(1, 4); // twice the calibration: the scale moves half way
    expect(cost.time(1)).toBeCloseTo(3);
    expect(cost.time(4)).toBeCloseTo(6);
    cost.observe(1, 400); // a stalled pass moves it at most to twice the scale
    expect(cost.time(1)).toBeCloseTo(4.5);
  });

  it('calibrates on an evaluator and leaves its cache as it was', async () => {
    const model = new FakeModel(chaotic);
    const sequence = new Sequence(model);
    await sequence.append([1, 2, 3]);
    const cost = await CostModel.calibrate(model, sequence.cached, sequence.pending);
    expect(cost.table().map(([n]) => n).slice(0, 3)).toEqual([1, 2, 3]);
    expect(model.cache).toEqual([1, 2]);
  });
});

describe('the planner', () => {
  const candidates = () => {
    const tree = new DraftTree(1);
    tree.addChain(0, [2, 3, 4, 5], () => 'k', () => 0.5, 'k');
    return tree;
  };

  it('scores every guess when passes cost the same whatever their size', () => {
    expect(new Planner(flat(), []).choose(candidates(), 64, 1).size).toBe(5);
  });

  it('scores no guess when a pass costs its size', () => {
    expect(new Planner(linear(), []).choose(candidates(), 64, 1).size).toBe(1);
  });

  it('stops where another guess costs more than it is expected to yield', () => {
    // t(n) = 1 + 0.3 (n - 1); the guesses pay off 0.5, 0.25, 0.125, ...: one guess gives 1.5 tokens for
    // 1.3 (1.15 a unit of time), two give 1.75 for 1.6 (1.09).
    const cost = new CostModel([[1, 1], [2, 1.3], [3, 1.6], [4, 1.9], [5, 2.2]]);
    expect(new Planner(cost, []).choose(candidates(), 64, 1).size).toBe(2);
  });

  it('keeps within the room it is given', () => {
    expect(new Planner(flat(), []).choose(candidates(), 2, 1).size).toBe(3);
  });
});

describe('--decoder auto on a fake model', () => {
  const models = { chaotic, periodic, mostlyPositional };

  it('matches greedy decoding with free passes (wide trees), costly passes (no guesses) and a measured cost', async () => {
    for (const [name, next] of Object.entries(models)) {
      for (const costModel of [flat(), linear(), undefined]) {
        for (const prompt of [[4, 5, 6], [1, 2, 3, 1, 2, 3, 1, 2], [7]]) {
          const model = new FakeModel(next);
          const { result } = await run(model, prompt, { costModel });
          expect(result.steps, name).toBeLessThanOrEqual(result.tokens.length);
        }
      }
    }
  });

  it('falls back to one token per pass when no guess pays', async () => {
    const model = new FakeModel(periodic);
    const { result, stats } = await run(model, [1, 2, 3], { costModel: linear() });
    expect(result.steps).toBe(120);
    expect(stats.scoredPerStep).toBe(1);
  });

  it('scores trees and accepts several tokens per pass where the text repeats', async () => {
    const model = new FakeModel(periodic);
    const { stats } = await run(model, [1, 2, 3], { costModel: flat() });
    expect(model.treePasses).toBeGreaterThan(0);
    expect(stats.tokensPerStep).toBeGreaterThan(3);
    expect(Object.keys(stats.sources)).toContain('model');
    expect(Object.values(stats.sources).reduce((a, n) => a + n, 0)).toBe(120);
  });

  it('stops at EOS inside an accepted path and at max tokens', async () => {
    const stopAt = (prefix: readonly number[]) => (prefix.length === 40 ? EOS : periodic(prefix));
    const model = new FakeModel(stopAt);
    const { result } = await run(model, [1, 2, 3], { costModel: flat() });
    expect(result.stopReason).toBe('eos');
    const short = await run(new FakeModel(periodic), [1, 2, 3], { costModel: flat(), maxTokens: 7 });
    expect(short.result.stopReason).toBe('length');
  });

  it('stops when the context is full', async () => {
    const model = new FakeModel(periodic, 40);
    const sequence = new Sequence(model);
    await sequence.append([1, 2, 3]);
    const result = await generate(sequence, { maxTokens: 100, costModel: flat() });
    expect(result.stopReason).toBe('context');
    expect(result.tokens).toEqual(model.greedy([1, 2, 3], result.tokens.length));
    expect(model.cache.length).toBeLessThanOrEqual(40);
  });

  const alone: [string, () => DraftSource, typeof periodic, number][] = [
    ['suffix matching', () => new SuffixMatch(), periodic, 1.5],
    ['token recycling', () => new TokenRecycling(), periodic, 3],
    ['the Jacobi tail', () => new JacobiTail(drawFromText(), 8), mostlyPositional, 1.5],
  ];
  for (const [name, source, next, atLeast] of alone) {
    it(`matches greedy decoding with ${name} alone`, async () => {
      for (const prompt of [[4, 5, 6], [1, 2, 3, 1, 2, 3]]) {
        const model = new FakeModel(next);
        const drafter = new Planner(flat(), [source()]);
        const { stats } = await run(model, prompt, { drafter });
        expect(stats.tokensPerStep, name).toBeGreaterThanOrEqual(atLeast);
      }
    });
  }

  it('fills the n-gram pool from Jacobi iterations and drafts from it, exactly', async () => {
    const model = new FakeModel(periodic);
    const pool = new NgramPool();
    const drafter = new Planner(flat(), [pool, new JacobiTail(drawFromText(), 8)]);
    await run(model, [4, 5, 6], { drafter, maxTokens: 300 });
    expect(drafter.rates.summary().pool.accepted).toBeGreaterThan(0);
  });
});

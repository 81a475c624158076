// The Jacobi decoder against a pure TypeScript fake model, whose KV cache checks the decoder's invariant.
import { describe, expect, it } from 'vitest';
import { drawFromText, type DraftFill } from '../src/engine/drafters/fill.js';
import { firstDivergence, generate, generationStats, type GenerateOptions, type StepTrace } from '../src/engine/generate.js';
import { Sequence } from '../src/engine/sequence.js';
import { samplingSettings } from '../src/engine/sampling.js';
import { EOS, FakeModel } from './support/fake-model.js';

// Hash of the whole prefix: a wrong guess anywhere scrambles every later prediction.
const chaotic = (prefix: readonly number[]) => {
  let h = 2166136261;
  for (const t of prefix) h = Math.imul(h ^ t, 16777619);
  return 1 + ((h >>> 0) % 50_000);
};
// Mostly a function of the position alone, as much of real text is nearly certain whatever the words just
// before it: predictions made from wrong guesses are often right, so steps accept several tokens.
const mostlyPositional = (prefix: readonly number[]) =>
  prefix.length % 4 === 0 ? 1 + ((prefix[prefix.length - 1] * 7 + 3) % 97) : 1 + ((prefix.length * 5) % 97);

async function run(model: FakeModel, prompt: number[], options: Partial<GenerateOptions> = {}) {
  const sequence = new Sequence(model);
  const prefillMs = await sequence.append(prompt);
  const steps: StepTrace[] = [];
  const streamed: number[] = [];
  const result = await generate(sequence, {
    decoder: 'jacobi',
    block: 8,
    maxTokens: 64,
    ...options,
    onStep: (s) => {
      steps.push(s);
    },
    onTokens: (t) => {
      streamed.push(...t);
      options.onTokens?.(t);
    },
  });
  // The invariant after every generation: the cache holds the committed tokens it claims to, at least all
  // but the pending one for a chain (a tree may leave an accepted branch to be fed again).
  expect(model.cache).toEqual(sequence.tokens.slice(0, sequence.cached));
  if (options.decoder !== 'auto' && !options.drafter) expect(sequence.cached).toBe(sequence.tokens.length - 1);
  expect(streamed).toEqual(result.tokens);
  return { result, steps, sequence, stats: generationStats(result, { decoder: 'jacobi', block: options.block ?? 8, promptTokens: prompt.length, prefillMs }) };
}

const oracle = (model: FakeModel): DraftFill => (committed, count) => model.greedy(committed, count).concat(new Array(count).fill(1)).slice(0, count);

describe('Jacobi decoder on a fake model', () => {
  it('accepts the whole block when every guess is right', async () => {
    const model = new FakeModel(chaotic);
    const { result, steps, stats } = await run(model, [5, 6, 7], { block: 8, maxTokens: 64, fill: oracle(model) });
    expect(result.tokens).toEqual(model.greedy([5, 6, 7], 64));
    expect(steps.every((s) => s.accepted === 8)).toBe(true);
    expect(result.steps).toBe(8);
    expect(stats.tokensPerStep).toBe(8);
    expect(result.stopReason).toBe('length');
  });

  it('accepts only the first token when every guess is wrong', async () => {
    const model = new FakeModel(chaotic);
    const { result, steps, stats } = await run(model, [5, 6, 7], { block: 8, maxTokens: 40, fill: (_, n) => new Array(n).fill(99_999) });
    expect(result.tokens).toEqual(model.greedy([5, 6, 7], 40));
    expect(steps.every((s) => s.accepted === 1)).toBe(true);
    expect(stats).toMatchObject({ steps: 40, tokensPerStep: 1, generatedTokens: 40, decoder: 'jacobi', block: 8, promptTokens: 3 });
  });

  it('converges several tokens per step on a model with fixed points to find', async () => {
    const model = new FakeModel(mostlyPositional);
    const { result, stats } = await run(model, [5], { block: 16, maxTokens: 200, fill: (_, n) => new Array(n).fill(3) });
    expect(result.tokens).toEqual(model.greedy([5], 200));
    expect(stats.tokensPerStep).toBeGreaterThan(1.5);
  });

  it('stops at an end-of-generation token in the middle of a block, dropping what follows', async () => {
    // Greedy output: 10, 11, 12, 13, EOS, 15, 16, ...
    const model = new FakeModel((prefix) => (prefix.length === 7 ? EOS : prefix.length + 7));
    const { result, steps } = await run(model, [1, 2, 3], { block: 8, fill: oracle(model) });
    expect(result.tokens).toEqual([10, 11, 12, 13, EOS]);
    expect(result.stopReason).toBe('eos');
    expect(steps).toHaveLength(1);
    expect(steps[0].accepted).toBeGreaterThan(5); // the block ran past the EOS
  });

  it('stops at max tokens in the middle of a block', async () => {
    const model = new FakeModel(chaotic);
    const { result, steps } = await run(model, [1, 2], { block: 8, maxTokens: 5, fill: oracle(model) });
    expect(result.tokens).toEqual(model.greedy([1, 2], 5));
    expect(result.stopReason).toBe('length');
    expect(steps).toHaveLength(1);
  });

  it('stops when the context is full, keeping the text so far', async () => {
    const model = new FakeModel(chaotic, 20);
    const { result, sequence } = await run(model, [1, 2, 3, 4, 5], { block: 8, maxTokens: 100, fill: oracle(model) });
    expect(result.stopReason).toBe('context');
    // Positions 0..19 are cached; the last generated token is the pending one, predicted from position 19.
    expect(sequence.tokens).toHaveLength(21);
    expect(result.tokens).toEqual(model.greedy([1, 2, 3, 4, 5], 16));
  });

  it('stops between steps when interrupted, keeping what was generated', async () => {
    const model = new FakeModel(chaotic);
    const controller = new AbortController();
    let calls = 0;
    const { result } = await run(model, [1, 2], {
      block: 4,
      maxTokens: 1000,
      signal: controller.signal,
      fill: oracle(model),
      onTokens: () => {
        if (++calls === 3) controller.abort();
      },
    });
    expect(result.stopReason).toBe('interrupted');
    expect(result.tokens).toEqual(model.greedy([1, 2], 12));
  });

  it('is the autoregressive decoder at block 1: one token per pass', async () => {
    const model = new FakeModel(mostlyPositional);
    const { result, stats } = await run(model, [9, 8], { block: 1, maxTokens: 30 });
    expect(result.tokens).toEqual(model.greedy([9, 8], 30));
    expect(stats).toMatchObject({ decoder: 'ar', steps: 30, tokensPerStep: 1 });
    expect(model.passes).toBe(30 + 1); // the prefill, then one pass per token
  });

  it('matches greedy decoding for every block size and seed', async () => {
    for (const next of [chaotic, mostlyPositional]) {
      for (const block of [1, 2, 3, 4, 8, 16, 32]) {
        for (const seed of [0, 1, 2]) {
          const model = new FakeModel(next);
          const { result } = await run(model, [4, 5, 6], { block, maxTokens: 100, fill: undefined, ...(seed ? { fill: drawFromText(seed) } : {}) });
          expect(result.tokens).toEqual(model.greedy([4, 5, 6], 100));
        }
      }
    }
  });

  it('passes the sampling settings to every pass, so each decoder gives the autoregressive sample', async () => {
    const sampling = samplingSettings({ temperature: 0.8, seed: 3 });
    for (const next of [chaotic, mostlyPositional]) {
      const reference = new FakeModel(next).greedy([4, 5, 6], 100, sampling);
      expect(reference).not.toEqual(new FakeModel(next).greedy([4, 5, 6], 100));
      for (const options of [{ decoder: 'ar' as const }, { decoder: 'jacobi' as const, block: 8 }, { decoder: 'auto' as const }]) {
        const { result } = await run(new FakeModel(next), [4, 5, 6], { ...options, maxTokens: 100, fill: undefined, sampling });
        expect(result.tokens).toEqual(reference);
      }
    }
  });

  it('continues a sequence across turns without re-evaluating it', async () => {
    const model = new FakeModel(mostlyPositional);
    const sequence = new Sequence(model);
    await sequence.append([1, 2, 3]);
    const first = await generate(sequence, { decoder: 'jacobi', block: 4, maxTokens: 10 });
    const passesBefore = model.passes;
    await sequence.append([40, 41]);
    expect(model.passes).toBe(passesBefore + 1); // only the new tokens
    const second = await generate(sequence, { decoder: 'jacobi', block: 4, maxTokens: 10 });
    expect(second.tokens).toEqual(model.greedy([1, 2, 3, ...first.tokens, 40, 41], 10));
  });

  it('reports the first divergence from greedy output with its margin', () => {
    const greedy = { tokens: [1, 2, 3, 4], margins: [5, 4, 0.00001, 2], stopReason: 'length' as const, steps: 4, decodeMs: 1 };
    expect(firstDivergence(greedy, [1, 2, 3, 4])).toBeUndefined();
    expect(firstDivergence(greedy, [1, 2, 9, 4])).toEqual({ index: 2, expected: 3, got: 9, margin: 0.00001 });
    expect(firstDivergence(greedy, [1, 2])).toMatchObject({ index: 2, expected: 3, got: undefined });
  });
});

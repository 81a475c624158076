// The sampler (native/sampler.cpp): its distribution against softmax(logits / T) after llama.cpp's
// truncations and penalties, its edge cases, and sampling through a real model's decode.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../src/engine/addon.js';
import type { Context } from '../src/engine/context.js';
import { complete } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { isPenalized, samplingSettings, type SamplingOptions } from '../src/engine/sampling.js';
import { Sequence } from '../src/engine/sequence.js';
import { fixtureModel, haveStories, storiesModel } from './support/models.js';

const SAMPLES = 20_000;
// Chi-square critical values at significance 0.001 for 1..20 degrees of freedom. The seeds are fixed, so a
// test either always passes or always fails: it cannot flake.
// Beyond the table, the Wilson-Hilferty approximation (z = 3.0902 for 0.001), within 0.5% there.
const TABLE = [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264, 32.909, 34.528, 36.123, 37.697, 39.252, 40.79, 42.312, 43.82, 45.315];
const critical = (df: number) => TABLE[df - 1] ?? df * (1 - 2 / (9 * df) + 3.0902 * Math.sqrt(2 / (9 * df))) ** 3;

const sample = (logits: number[], position: number, sampling: Partial<SamplingOptions>, recent?: number[]) =>
  native().sampleToken(Float32Array.from(logits), position, samplingSettings(sampling), recent && Int32Array.from(recent));

/** What the sampler should draw from: llama.cpp's penalties, top-k, top-p and min-p, then softmax(l / T). */
function expectedDistribution(raw: number[], s: SamplingOptions, recent: number[] = []): number[] {
  const logits = raw.map(Math.fround);
  if (isPenalized(s)) {
    const counts = new Map<number, number>();
    for (const t of recent.slice(-s.repeatLastN)) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, n] of counts) {
      logits[t] = logits[t] <= 0 ? logits[t] * s.repeatPenalty : logits[t] / s.repeatPenalty;
      logits[t] -= n * s.frequencyPenalty + s.presencePenalty;
    }
  }
  let kept = logits.map((_, i) => i).filter((i) => logits[i] > -Infinity).sort((a, b) => logits[b] - logits[a] || a - b);
  if (s.topK > 0) kept = kept.slice(0, s.topK);
  const max = logits[kept[0]];
  if (s.topP < 1) {
    const total = kept.reduce((a, i) => a + Math.exp(logits[i] - max), 0);
    let cumulative = 0;
    let n = 0;
    while (n < kept.length) {
      cumulative += Math.exp(logits[kept[n++]] - max) / total;
      if (cumulative >= s.topP) break;
    }
    kept = kept.slice(0, n);
  }
  if (s.minP > 0) kept = kept.filter((i) => logits[i] >= max + Math.log(s.minP));
  const weights = kept.map((i) => Math.exp((logits[i] - max) / s.temperature));
  const total = weights.reduce((a, w) => a + w, 0);
  const p = new Array<number>(logits.length).fill(0);
  kept.forEach((i, k) => (p[i] = weights[k] / total));
  return p;
}

/** Pearson's statistic, with cells expected fewer than 5 times pooled; throws if a truncated token shows up. */
function chiSquare(counts: number[], p: number[]): { statistic: number; df: number } {
  let statistic = 0;
  let cells = 0;
  let pooledCount = 0;
  let pooledExpected = 0;
  counts.forEach((n, i) => {
    const e = p[i] * SAMPLES;
    if (p[i] === 0) {
      expect(n, `token ${i} was truncated away, yet sampled`).toBe(0);
    } else if (e < 5) {
      pooledCount += n;
      pooledExpected += e;
    } else {
      statistic += (n - e) ** 2 / e;
      cells++;
    }
  });
  if (pooledExpected > 0) {
    statistic += (pooledCount - pooledExpected) ** 2 / pooledExpected;
    cells++;
  }
  return { statistic, df: cells - 1 };
}

// A fixed pseudo-random vocabulary of 256 logits, roughly normal, for a long tail.
const wideLogits = Array.from({ length: 256 }, (_, i) => 3 * Math.sin(i * 12.9898) * Math.cos(i * 78.233));
const shortLogits = [2.0, 1.6, 1.1, 0.7, 0.2, -0.4, -1.5, -3.0];

describe('the sampler draws from softmax(logits / T) after the truncations', () => {
  const cases: { name: string; logits: number[]; sampling: Partial<SamplingOptions>; recent?: number[]; overPositions?: boolean }[] = [
    { name: 'T 0.8, top-k 5, top-p 0.9, min-p 0.05', logits: shortLogits, sampling: { temperature: 0.8, topK: 5, topP: 0.9, minP: 0.05 } },
    { name: 'T 1.2, no truncation', logits: shortLogits, sampling: { temperature: 1.2, topK: 0, topP: 1, minP: 0 } },
    { name: 'T 0.3, top-k 40, top-p 0.9', logits: wideLogits, sampling: { temperature: 0.3, topK: 40, topP: 0.9, minP: 0 } },
    { name: 'T 1, top-p 0.95, 256 tokens', logits: wideLogits, sampling: { temperature: 1, topK: 0, topP: 0.95, minP: 0 } },
    {
      name: 'T 0.8 with repetition, presence and frequency penalties',
      logits: shortLogits,
      sampling: { temperature: 0.8, topK: 0, topP: 1, minP: 0, repeatPenalty: 1.3, presencePenalty: 0.2, frequencyPenalty: 0.1 },
      recent: [0, 0, 1, 3, 6, 6, 6],
    },
    { name: 'one seed, over 20,000 positions', logits: shortLogits, sampling: { temperature: 0.8, topK: 5, topP: 0.9, minP: 0.05 }, overPositions: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const counts = new Array<number>(c.logits.length).fill(0);
      for (let i = 0; i < SAMPLES; i++) {
        const { token } = c.overPositions ? sample(c.logits, i, { ...c.sampling, seed: 42 }, c.recent) : sample(c.logits, 17, { ...c.sampling, seed: i }, c.recent);
        counts[token]++;
      }
      const p = expectedDistribution(c.logits, samplingSettings(c.sampling), c.recent);
      const { statistic, df } = chiSquare(counts, p);
      expect(df).toBeGreaterThanOrEqual(1);
      expect(statistic, `chi-square ${statistic.toFixed(2)} with ${df} degrees of freedom`).toBeLessThan(critical(df));
    });
  }
});

describe('sampler edge cases', () => {
  it('T = 0 is the argmax with its top-2 margin, whatever the seed', () => {
    for (let seed = 0; seed < 50; seed++) {
      const { token, margin } = sample(shortLogits, seed, { temperature: 0, seed });
      expect(token).toBe(0);
      expect(margin).toBeCloseTo(0.4, 5);
    }
  });

  it('top-k 1 is greedy at any temperature', () => {
    for (let seed = 0; seed < 500; seed++) expect(sample(wideLogits, seed, { temperature: 1.5, topK: 1, seed }).token).toBe(wideLogits.indexOf(Math.max(...wideLogits)));
  });

  it('a top-p that keeps one token samples only it', () => {
    for (let seed = 0; seed < 500; seed++) expect(sample([0, 5, 0, 0], 3, { temperature: 2, topK: 0, topP: 0.5, minP: 0, seed }).token).toBe(1);
  });

  it('a vocabulary with every logit but one at -inf samples that one', () => {
    const logits = [-Infinity, -Infinity, 3, -Infinity, -Infinity];
    for (let seed = 0; seed < 500; seed++) {
      const { token, margin } = sample(logits, seed, { temperature: 1.5, topK: 0, topP: 1, minP: 0, seed });
      expect(token).toBe(2);
      expect(margin).toBe(Infinity);
    }
  });

  it('never samples a -inf logit, and splits evenly between equal ones', () => {
    const counts = [0, 0, 0, 0];
    for (let seed = 0; seed < 4000; seed++) counts[sample([1, -Infinity, 1, -Infinity], 0, { temperature: 2, topK: 0, topP: 1, minP: 0, seed }).token]++;
    expect(counts[1] + counts[3]).toBe(0);
    expect(counts[0] / 4000).toBeGreaterThan(0.45);
    expect(counts[0] / 4000).toBeLessThan(0.55);
  });

  it('penalties apply at T = 0 too, over the last repeat-last-n tokens only', () => {
    const penalized = { temperature: 0, repeatPenalty: 10 };
    expect(sample(shortLogits, 0, penalized, [0]).token).toBe(1);
    expect(sample(shortLogits, 0, { ...penalized, repeatLastN: 1 }, [0, 5]).token).toBe(0);
    expect(sample([-1, -2], 0, penalized, [0]).token).toBe(1); // a negative logit is multiplied, so it falls
  });

  it('the same seed and position give the same token; another seed can give another', () => {
    const draws = (seed: number) => Array.from({ length: 64 }, (_, p) => sample(wideLogits, p, { temperature: 1, topK: 0, topP: 1, minP: 0, seed }).token);
    expect(draws(1)).toEqual(draws(1));
    expect(draws(2)).not.toEqual(draws(1));
  });
});

for (const { name, path } of [
  { name: 'stories260K', path: haveStories ? storiesModel : undefined },
  { name: 'the random fixture', path: fixtureModel },
]) {
  describe.skipIf(!path)(`sampling through decode on ${name}`, () => {
    let model: Model;
    let context: Context;
    beforeAll(async () => {
      model = await Model.load(path!);
      context = model.createContext({ contextSize: 512, threads: 2 });
    });
    afterAll(() => model.dispose());

    const generateWith = async (options: Parameters<typeof complete>[2]) => {
      const sequence = new Sequence(context);
      sequence.reset();
      return (await complete(sequence, Array.from(model.tokenize('Once upon a time')), options)).result;
    };

    it('top-k 1 at T 0.8 samples the greedy text, through the sampling path of every decoder', async () => {
      const greedy = await generateWith({ decoder: 'ar', maxTokens: 64 });
      for (const decoder of ['ar', 'jacobi', 'auto'] as const) {
        expect((await generateWith({ decoder, maxTokens: 64, sampling: { temperature: 0.8, topK: 1, seed: 5 } })).tokens).toEqual(greedy.tokens);
      }
    });

    it('a seed reproduces its text, and another seed changes it', async () => {
      const text = (seed: number) => generateWith({ decoder: 'jacobi', block: 8, maxTokens: 64, sampling: { temperature: 1, seed } });
      const first = await text(1);
      expect((await text(1)).tokens).toEqual(first.tokens);
      expect((await text(2)).tokens).not.toEqual(first.tokens);
      expect(first.sampling).toMatchObject({ temperature: 1, seed: 1, topK: 40, topP: 0.95, minP: 0.05 });
    });

    it('margins are the lead of the sampled token, and tokens match the autoregressive sample', async () => {
      const options = { maxTokens: 64, margins: true, sampling: { temperature: 0.8, repeatPenalty: 1.1, seed: 9 } };
      const ar = await generateWith({ decoder: 'ar', ...options });
      const jacobi = await generateWith({ decoder: 'jacobi', block: 16, ...options });
      expect(jacobi.tokens).toEqual(ar.tokens);
      expect(ar.margins.every((m) => m > 0)).toBe(true);
    });
  });
}

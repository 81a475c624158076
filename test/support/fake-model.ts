// A pure TypeScript fake model for the decoder tests, whose KV cache checks the decoder's invariant.
import { expect } from 'vitest';
import type { DecodeResult } from '../../src/engine/evaluator.js';
import type { DecodeOptions, Evaluator } from '../../src/engine/evaluator.js';
import type { SamplingOptions } from '../../src/engine/sampling.js';

export const EOS = 0;

/** A deterministic "model": the greedy next token is a function of the whole prefix. */
export class FakeModel implements Evaluator {
  readonly cache: number[] = [];
  passes = 0;

  constructor(
    readonly next: (prefix: readonly number[]) => number,
    readonly size = 4096,
  ) {}

  /** The largest pass so far, and the passes that scored a tree. */
  largestPass = 0;
  treePasses = 0;

  /**
   * Scores a chain, or a tree given by parents (node i at start + its depth). The cache keeps the main
   * chain, the leading nodes that each follow the one before, as llama.cpp's does until a rollback.
   * topK: the chosen token, then the next token ids after it. Sampling: a "sample" is `next` of the prefix and
   * the seed, a function of the seed, the position and the tokens before it, like the real sampler's.
   */
  async decode(tokens: ArrayLike<number>, start: number, { parents, topK = 0, sampling }: DecodeOptions = {}): Promise<DecodeResult> {
    // The decoder must feed exactly at the end of the cache, within the context.
    expect(start).toBe(this.cache.length);
    expect(start + tokens.length).toBeLessThanOrEqual(this.size);
    this.passes++;
    this.largestPass = Math.max(this.largestPass, tokens.length);
    const parentOf = (i: number) => (parents ? parents[i] : i - 1);
    if (parents) this.treePasses++;
    const paths: number[][] = [];
    const chosen = new Int32Array(tokens.length);
    const topk = new Int32Array(tokens.length * topK);
    for (let i = 0; i < tokens.length; i++) {
      expect(parentOf(i)).toBeLessThan(i);
      paths[i] = [...(i === 0 ? this.cache : paths[parentOf(i)]), tokens[i]];
      chosen[i] = this.choose(paths[i], sampling);
      for (let r = 0; r < topK; r++) topk[i * topK + r] = chosen[i] + r;
    }
    let mainChain = 1;
    while (mainChain < tokens.length && parentOf(mainChain) === mainChain - 1) mainChain++;
    this.cache.push(...Array.from(tokens).slice(0, mainChain));
    return { chosen, margins: new Float32Array(tokens.length).fill(1), ...(topK ? { topk } : {}) };
  }

  private choose(prefix: readonly number[], sampling?: SamplingOptions): number {
    return sampling && sampling.temperature > 0 ? this.next([...prefix, sampling.seed]) : this.next(prefix);
  }

  async prefill(tokens: ArrayLike<number>, start: number): Promise<void> {
    await this.decode(tokens, start);
  }

  rollback(position: number): void {
    this.cache.length = Math.min(this.cache.length, position);
  }

  isEndOfGeneration(token: number): boolean {
    return token === EOS;
  }

  /** Greedy (or sampled) one-by-one continuation of a prefix: the reference output. */
  greedy(prefix: readonly number[], count: number, sampling?: SamplingOptions): number[] {
    const all = [...prefix];
    const out: number[] = [];
    while (out.length < count) {
      const t = this.choose(all, sampling);
      out.push(t);
      all.push(t);
      if (t === EOS) break;
    }
    return out;
  }
}

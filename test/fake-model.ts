// A pure TypeScript fake model for the decoder tests, whose KV cache checks the decoder's invariant.
import { expect } from 'vitest';
import type { DecodeResult } from '../src/engine/context.js';
import type { Evaluator } from '../src/engine/evaluator.js';

export const EOS = 0;

/** A deterministic "model": the greedy next token is a function of the whole prefix. */
export class FakeModel implements Evaluator {
  readonly cache: number[] = [];
  passes = 0;

  constructor(
    readonly next: (prefix: readonly number[]) => number,
    readonly size = 4096,
  ) {}

  async decode(tokens: ArrayLike<number>, start: number): Promise<DecodeResult> {
    // The decoder must feed exactly at the end of the cache, within the context.
    expect(start).toBe(this.cache.length);
    expect(start + tokens.length).toBeLessThanOrEqual(this.size);
    this.passes++;
    const argmax = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      this.cache.push(tokens[i]);
      argmax[i] = this.next(this.cache);
    }
    return { argmax, margins: new Float32Array(tokens.length).fill(1) };
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

  /** Greedy one-by-one continuation of a prefix: the reference output. */
  greedy(prefix: readonly number[], count: number): number[] {
    const all = [...prefix];
    const out: number[] = [];
    while (out.length < count) {
      const t = this.next(all);
      out.push(t);
      all.push(t);
      if (t === EOS) break;
    }
    return out;
  }
}

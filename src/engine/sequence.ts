import { CllmError } from './errors.js';
import type { Evaluator } from './evaluator.js';

/** Prompt tokens per prefill pass: small enough for a progress report every fraction of a second. */
const PREFILL_CHUNK = 2048;

/**
 * One token sequence and its KV cache. Invariant: the cache holds the first `cached` committed tokens, at
 * least every one but the last, the *pending* token. The next forward pass feeds the rest first: usually
 * just the pending token, more after a draft tree accepted a branch off its main chain. Multi-turn chat
 * appends to it, so earlier turns are never evaluated again.
 */
export class Sequence {
  private committed: number[] = [];
  private cachedTokens = 0;

  constructor(readonly evaluator: Evaluator) {}

  get tokens(): readonly number[] {
    return this.committed;
  }

  /** Position of the pending token: the number of tokens in the KV cache. */
  get position(): number {
    return Math.max(0, this.committed.length - 1);
  }

  get pending(): number {
    return this.committed[this.committed.length - 1];
  }

  /** Committed tokens held in the KV cache: positions [0, cached). */
  get cached(): number {
    return this.cachedTokens;
  }

  /** The committed tokens the cache lacks, which the next pass feeds first: the pending token last. */
  get uncached(): readonly number[] {
    return this.committed.slice(this.cachedTokens);
  }

  /**
   * Appends prompt tokens, evaluating all but the new pending token, PREFILL_CHUNK at a time, reporting
   * (evaluated, total) after each chunk. Returns milliseconds spent.
   */
  async append(tokens: readonly number[], onProgress?: (evaluated: number, total: number) => void): Promise<number> {
    const t0 = performance.now();
    if (tokens.length === 0) return 0;
    const toEvaluate = [...this.uncached, ...tokens].slice(0, -1);
    const start = this.cachedTokens;
    if (start + toEvaluate.length + 1 > this.evaluator.size) {
      throw new CllmError(`the prompt needs ${start + toEvaluate.length + 1} tokens of context, more than the ${this.evaluator.size} available (raise --ctx)`);
    }
    try {
      for (let done = 0; done < toEvaluate.length; done += PREFILL_CHUNK) {
        const chunk = toEvaluate.slice(done, done + PREFILL_CHUNK);
        await this.evaluator.prefill(chunk, start + done);
        onProgress?.(done + chunk.length, toEvaluate.length);
      }
    } catch (err) {
      this.evaluator.rollback(start); // a failed pass may have cached part of the prompt
      throw err;
    }
    this.committed.push(...tokens);
    this.cachedTokens = this.position;
    return performance.now() - t0;
  }

  /**
   * Commits generated tokens. The cache keeps its entries below `cached` (default: all but the new pending
   * token, which the caller must have left in the cache) and drops the rest.
   */
  commit(tokens: readonly number[], cached = Infinity): void {
    this.committed.push(...tokens);
    this.cachedTokens = Math.min(cached, this.position);
    this.evaluator.rollback(this.cachedTokens);
  }

  reset(): void {
    this.committed = [];
    this.cachedTokens = 0;
    this.evaluator.rollback(0);
  }
}

import type { RawContext } from './addon.js';
import { CllmError, fromNative } from './errors.js';
import type { Evaluator } from './evaluator.js';

export interface DecodeResult {
  /** argmax[i] is the greedy prediction for position start + i + 1. */
  argmax: Int32Array;
  /** Top-1 minus top-2 logit at each position, when asked for. */
  margins?: Float32Array;
}

export interface ContextSettings {
  contextSize: number;
  batchSize: number;
  threads: number;
}

/**
 * A llama.cpp context: one KV-cached sequence. decode() scores a whole block in one forward pass and
 * returns per-position argmax, computed natively; rollback() trims the cache after rejected draft tokens.
 */
export class Context implements Evaluator {
  constructor(
    private raw: RawContext | undefined,
    readonly settings: ContextSettings,
    readonly isEndOfGeneration: (token: number) => boolean,
    private readonly onDispose: () => void,
  ) {}

  private get context(): RawContext {
    if (!this.raw) throw new CllmError('the context has been disposed');
    return this.raw;
  }

  get size(): number {
    return this.settings.contextSize;
  }

  /** Positions now held in the KV cache. */
  get cachedTokens(): number {
    return this.context.cachedTokens();
  }

  /**
   * Evaluates tokens at positions start..start+n-1 in one pass (split by batchSize). The cache must hold
   * exactly positions [0, start) beforehand; on failure roll back to start.
   */
  async decode(tokens: ArrayLike<number>, start: number, { margins = false } = {}): Promise<DecodeResult> {
    return this.run(tokens, start, margins ? 'margins' : 'argmax');
  }

  /** Like decode, but only fills the cache: no logits are computed, which saves the output layer on prompts. */
  async prefill(tokens: ArrayLike<number>, start: number): Promise<void> {
    await this.run(tokens, start, 'none');
  }

  /** Evaluates tokens like decode and returns, at each position i, the natural log-probability of targets[i]. */
  async logProbabilities(tokens: ArrayLike<number>, start: number, targets: ArrayLike<number>): Promise<Float32Array> {
    const result = await this.run(tokens, start, 'logprobs', Int32Array.from(targets));
    return result.logprobs!;
  }

  private async run(tokens: ArrayLike<number>, start: number, outputs: 'argmax' | 'margins' | 'logprobs' | 'none', targets?: Int32Array): Promise<DecodeResult & { logprobs?: Float32Array }> {
    const block = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
    if (start + block.length > this.size) {
      throw new CllmError(`the context is full: ${start + block.length} tokens exceed the context size of ${this.size}`);
    }
    try {
      return await this.context.decode(block, start, outputs, targets);
    } catch (err) {
      throw new CllmError((err as Error).message);
    }
  }

  /** Forgets every cached position from `position` on. */
  rollback(position: number): void {
    fromNative(() => this.context.rollback(position));
  }

  dispose(): void {
    if (!this.raw) return;
    this.raw.dispose();
    this.raw = undefined;
    this.onDispose();
  }
}

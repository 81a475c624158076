import type { RawContext, RawDecodeOptions, RawDecodeResult } from './addon.js';
import { CllmError, fromNative } from './errors.js';
import type { DecodeOptions, DecodeResult, Evaluator } from './evaluator.js';
import { checkSampling, isGreedy } from './sampling.js';
import { ThreadGovernor } from './threads.js';

/**
 * Where a one-token pass takes less than this, a context runs its passes of up to INLINE_TOKENS tokens on
 * the JavaScript thread: handing a pass to the context's thread and the result back costs 30 to 60
 * microseconds, 5% to 10% of a pass of a small model. Both threads lead the same pool of CPU workers.
 */
const INLINE_BELOW_MS = 8;
const INLINE_TOKENS = 64;
/** The error of a pass that Ctrl-C stopped half way (native().setInterrupted). */
export const INTERRUPTED = 'interrupted';
/** Inline passes block the event loop; it gets a turn this often, for Ctrl-C and output to pipes. */
const YIELD_EVERY_MS = 15;

export interface ContextSettings {
  contextSize: number;
  batchSize: number;
  /** The most CPU threads a pass uses. */
  threads: number;
  /** Fewer threads when that is faster (when other processes compete for the cores). */
  adaptThreads: boolean;
}

/**
 * A llama.cpp context: one KV-cached sequence. decode() scores a whole block in one forward pass and
 * returns the chosen token at every position (the argmax, or a sample), computed natively; rollback() trims the cache after rejected draft tokens.
 */
export class Context implements Evaluator {
  private inline: boolean | undefined;
  private lastYield = performance.now();
  private readonly governor: ThreadGovernor | undefined;

  constructor(
    private raw: RawContext | undefined,
    readonly settings: ContextSettings,
    readonly isEndOfGeneration: (token: number) => boolean,
    private readonly onDispose: () => void,
  ) {
    if (settings.adaptThreads) this.governor = new ThreadGovernor(settings.threads, (n) => this.context.setThreads(n));
  }

  /** CPU threads the next pass uses. */
  get threads(): number {
    return this.governor?.current ?? this.settings.threads;
  }

  private get context(): RawContext {
    if (!this.raw) throw new CllmError('the context has been disposed');
    return this.raw;
  }

  get size(): number {
    return this.settings.contextSize;
  }

  /** Passes so far that reused llama.cpp's previous compute graph (on CUDA, its captured CUDA graph too). */
  get graphsReused(): number {
    return this.context.graphsReused();
  }

  /** Positions now held in the KV cache. */
  get cachedTokens(): number {
    return this.context.cachedTokens();
  }

  /**
   * Evaluates tokens at positions start..start+n-1 in one pass (split by batchSize), or a draft tree with
   * `parents`. The cache must hold exactly positions [0, start) beforehand; on failure roll back to start.
   */
  async decode(tokens: ArrayLike<number>, start: number, { margins = false, parents, topK, sampling }: DecodeOptions = {}): Promise<DecodeResult> {
    return this.run(tokens, start, { outputs: margins ? 'margins' : 'chosen', parents: parents && Int32Array.from(parents), topK, sampling: sampling && !isGreedy(checkSampling(sampling)) ? sampling : undefined });
  }

  /** Like decode, but only fills the cache: no logits are computed, which saves the output layer on prompts. */
  async prefill(tokens: ArrayLike<number>, start: number): Promise<void> {
    await this.run(tokens, start, { outputs: 'none' });
  }

  /** Evaluates tokens like decode and returns, at each position i, the natural log-probability of targets[i]. */
  async logProbabilities(tokens: ArrayLike<number>, start: number, targets: ArrayLike<number>): Promise<Float32Array> {
    const result = await this.run(tokens, start, { outputs: 'logprobs', targets: Int32Array.from(targets) });
    return result.logprobs!;
  }

  private async run(tokens: ArrayLike<number>, start: number, options: RawDecodeOptions): Promise<RawDecodeResult> {
    const block = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
    if (start + block.length > this.size) {
      throw new CllmError(`the context is full: ${start + block.length} tokens exceed the context size of ${this.size}`);
    }
    try {
      if (options.outputs === 'none') return await this.context.decode(block, start, options);
      let result;
      if (!this.inline || block.length > INLINE_TOKENS) {
        result = await this.context.decode(block, start, options);
        if (block.length === 1) this.inline ??= result.decodeMs < INLINE_BELOW_MS;
      } else {
        if (performance.now() - this.lastYield > YIELD_EVERY_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          this.lastYield = performance.now();
        }
        result = this.context.decodeNow(block, start, options);
      }
      this.governor?.observe(block.length, result.decodeMs);
      return result;
    } catch (err) {
      const message = (err as Error).message;
      throw new CllmError(message, message === INTERRUPTED ? 130 : 1);
    }
  }

  /** Forgets every cached position from `position` on, and every branch of the last draft tree. */
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

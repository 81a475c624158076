import type { DecodeResult } from './context.js';

/**
 * What a decoder needs from a model: score a block in one pass, trim the KV cache, recognise the end of
 * generation. Context implements it over llama.cpp; the tests implement it with a pure TypeScript fake.
 */
export interface Evaluator {
  readonly size: number;
  decode(tokens: ArrayLike<number>, start: number, options?: { margins?: boolean }): Promise<DecodeResult>;
  /** Evaluates tokens into the KV cache without computing any prediction (a prompt). */
  prefill(tokens: ArrayLike<number>, start: number): Promise<void>;
  rollback(position: number): void;
  isEndOfGeneration(token: number): boolean;
}

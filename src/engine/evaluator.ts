import type { DecodeResult } from './context.js';

/**
 * What a decoder needs from a model: score a block in one pass, trim the KV cache, recognise the end of
 * generation. Context implements it over llama.cpp; the tests implement it with a pure TypeScript fake.
 */
export interface Evaluator {
  readonly size: number;
  decode(tokens: ArrayLike<number>, start: number, options?: { margins?: boolean }): Promise<DecodeResult>;
  rollback(position: number): void;
  isEndOfGeneration(token: number): boolean;
}

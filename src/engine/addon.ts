// The typed face of the native addon. Only this file touches the raw addon; the rest of cllm uses
// Model and Context from model.ts and context.ts.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CllmError } from './errors.js';
import type { SamplingOptions } from './sampling.js';

export interface RawModelInfo {
  architecture: string;
  name: string;
  description: string;
  parameterCount: number;
  tensorBytes: number;
  vocabularySize: number;
  trainedContextLength: number;
  layers: number;
  embeddingLength: number;
  headCount: number;
  headCountKv: number;
  bos: number;
  eos: number;
  addBos: boolean;
  /** Recurrent and hybrid models (Mamba, RWKV, Jamba) cannot roll their state back to a position. */
  recurrent: boolean;
  quantization: string;
  chatTemplate: string | null;
}

export interface RawModel {
  info(): RawModelInfo;
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
  detokenize(tokens: Int32Array, renderSpecial: boolean): string;
  tokenBytes(token: number, renderSpecial: boolean): Buffer;
  isEog(token: number): boolean;
  dispose(): void;
}

export interface RawDecodeResult {
  chosen: Int32Array;
  margins?: Float32Array;
  logprobs?: Float32Array;
  /** topK candidates per position, best first: topk[i * topK + r]. */
  topk?: Int32Array;
  /** Milliseconds spent inside llama_decode. */
  decodeMs: number;
}

export interface RawDecodeOptions {
  /**
   * 'chosen' (the chosen token per position), 'margins' (and its lead over the runner-up), 'logprobs' (and the log-probability
   * of targets[i] at position i), or 'none' (fill the cache only).
   */
  outputs: 'chosen' | 'margins' | 'logprobs' | 'none';
  targets?: Int32Array;
  /** A draft tree: parents[i] < i is node i's parent, -1 for node 0; nodes sit at start + their depth. */
  parents?: Int32Array;
  topK?: number;
  /** Sampling instead of the argmax (sampler.h); absent: greedy. */
  sampling?: SamplingOptions;
}

export interface RawContext {
  /** Decodes on the context's own thread. */
  decode(tokens: Int32Array, startPosition: number, options: RawDecodeOptions): Promise<RawDecodeResult>;
  /** Decodes on the calling thread, blocking it: for short passes, where the hand-over costs more. */
  decodeNow(tokens: Int32Array, startPosition: number, options: RawDecodeOptions): RawDecodeResult;
  /** Forgets every cached position from `position` on, and every branch of the last draft tree. */
  rollback(position: number): void;
  /** CPU threads for later passes. */
  setThreads(threads: number): void;
  size(): number;
  cachedTokens(): number;
  graphsReused(): number;
  dispose(): void;
}

export interface BuildInfo {
  llamaCppCommit: string;
  backend: 'cpu' | 'cuda' | 'metal';
  devices: { name: string; description: string; gpu: boolean; memoryFree: number; memoryTotal: number }[];
  /** Whether a block's logits can equal one-token decoding's bit for bit (exact contexts). */
  exactKernels: boolean;
  /** The KV cache of exact contexts: F16 on the CPU, whose patched kernels keep it exact; F32 elsewhere. */
  exactCacheType: 'f16' | 'f32';
}

interface Addon {
  loadModel(path: string, options: { gpuLayers?: number; useMmap?: boolean; rpc?: string[] }, onProgress?: (fraction: number) => void): Promise<RawModel>;
  Context: new (model: RawModel, options: { contextSize: number; batchSize: number; threads: number; exact: boolean }) => RawContext;
  /** The decoder's sampler over given logits (penalized for `recent`): for tests of its distribution. */
  sampleToken(logits: Float32Array, position: number, sampling: SamplingOptions, recent?: Int32Array): { token: number; margin: number };
  setVerbose(verbose: boolean): void;
  /** Ctrl-C: a model load stops at its next progress report, a forward pass inside its graph ("interrupted"). */
  setInterrupted(interrupted: boolean): void;
  /** For the command line: ggml aborts, fatal signals and C++ terminate end as one line and exit code 1. */
  installCrashGuard(): void;
  buildInfo(): BuildInfo;
}

const addonPath = fileURLToPath(new URL('../../build/Release/cllm.node', import.meta.url));
let addon: Addon | undefined;

export function native(): Addon {
  if (!addon) {
    try {
      addon = createRequire(import.meta.url)(addonPath) as Addon;
    } catch (err) {
      throw new CllmError(`the native addon could not be loaded (${addonPath}): ${(err as Error).message.split('\n')[0]}. Run \`npm run build:native\`.`);
    }
  }
  return addon;
}

/** How this cllm was built: backend, llama.cpp commit, devices, and whether its kernels are exact. */
export function buildInfo(): BuildInfo {
  return native().buildInfo();
}

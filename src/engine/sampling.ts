// Sampling settings, with llama.cpp's names, meanings and defaults. The sampler itself runs in the addon
// (native/sampler.cpp): every position's token is the Gumbel-max of its processed logits with noise keyed
// by (seed, position, token), so Jacobi decoding reproduces the autoregressive sample exactly.
import { CllmError } from './errors.js';

export interface SamplingOptions {
  /** 0: greedy decoding. */
  temperature: number;
  /** Keep the k likeliest tokens; 0: off. */
  topK: number;
  /** Keep the likeliest tokens whose probabilities add up to p; 1: off. */
  topP: number;
  /** Keep tokens at least p times as likely as the likeliest; 0: off. */
  minP: number;
  /** Divides the logit of each recent token (multiplies a negative one); 1: off. */
  repeatPenalty: number;
  /** Recent tokens the penalties look at (the prompt's included); 0: off. */
  repeatLastN: number;
  /** Subtracted from the logit of every recent token. */
  presencePenalty: number;
  /** Subtracted from a recent token's logit once per occurrence. */
  frequencyPenalty: number;
  /** The same seed, settings and prompt give the same text, with every decoder. */
  seed: number;
}

/** llama-cli's defaults: `cllm run` samples with these. */
export const LLAMA_CPP_SAMPLING: SamplingOptions = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
  presencePenalty: 0,
  frequencyPenalty: 0,
  seed: 0,
};

export const MAX_SEED = 2 ** 32 - 1;

/** A seed for a run that names none, to be shown so that the run can be repeated. */
export function randomSeed(): number {
  return Math.floor(Math.random() * (MAX_SEED + 1));
}

/** True where the settings decode greedily with no penalty: the plain argmax of the logits. */
export function isGreedy(s: SamplingOptions): boolean {
  return s.temperature === 0 && !isPenalized(s);
}

export function isPenalized(s: SamplingOptions): boolean {
  return s.repeatLastN !== 0 && (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0);
}

/** Where each setting may lie, and what it means, for one-line errors. */
const RANGES: Record<keyof SamplingOptions, { flag: string; check: (x: number) => boolean; what: string }> = {
  temperature: { flag: '--temp', check: (x) => x >= 0 && x <= 100, what: 'a number from 0 (greedy) to 100' },
  topK: { flag: '--top-k', check: (x) => Number.isInteger(x) && x >= 0 && x <= 2 ** 31 - 1, what: 'an integer >= 0 (0: off)' },
  topP: { flag: '--top-p', check: (x) => x >= 0 && x <= 1, what: 'a number from 0 to 1 (1: off)' },
  minP: { flag: '--min-p', check: (x) => x >= 0 && x <= 1, what: 'a number from 0 (off) to 1' },
  repeatPenalty: { flag: '--repeat-penalty', check: (x) => x > 0 && x <= 100, what: 'a number above 0, at most 100 (1: off)' },
  repeatLastN: { flag: '--repeat-last-n', check: (x) => Number.isInteger(x) && x >= 0 && x <= 2 ** 31 - 1, what: 'an integer >= 0 (0: off)' },
  presencePenalty: { flag: '--presence-penalty', check: (x) => x >= -100 && x <= 100, what: 'a number from -100 to 100 (0: off)' },
  frequencyPenalty: { flag: '--frequency-penalty', check: (x) => x >= -100 && x <= 100, what: 'a number from -100 to 100 (0: off)' },
  seed: { flag: '--seed', check: (x) => Number.isInteger(x) && x >= 0 && x <= MAX_SEED, what: `an integer from 0 to ${MAX_SEED}` },
};

/** The flag that sets a setting, and the range check every entry point shares. */
export function samplingRange(key: keyof SamplingOptions): { flag: string; check: (x: number) => boolean; what: string } {
  return RANGES[key];
}

/** Full settings from some: llama.cpp's defaults, but greedy (temperature 0) unless a temperature is given. */
export function samplingSettings(some: Partial<SamplingOptions> = {}): SamplingOptions {
  return checkSampling({ ...LLAMA_CPP_SAMPLING, temperature: 0, ...some });
}

/** Checks every setting; the library's callers get the same one-line errors as the CLI's. */
export function checkSampling(s: SamplingOptions): SamplingOptions {
  for (const key of Object.keys(RANGES) as (keyof SamplingOptions)[]) {
    const { flag, check, what } = RANGES[key];
    if (typeof s[key] !== 'number' || !check(s[key])) throw new CllmError(`${flag} must be ${what}, not ${s[key]}`, 2);
  }
  return s;
}

/** "temp 0.8, top-k 40, top-p 0.95, min-p 0.05, seed 42" (the seed where asked), or "greedy". */
export function describeSampling(s: SamplingOptions, { seed = true } = {}): string {
  const parts = s.temperature === 0 ? ['greedy'] : [`temp ${s.temperature}`];
  if (s.temperature > 0) {
    if (s.topK > 0) parts.push(`top-k ${s.topK}`);
    if (s.topP < 1) parts.push(`top-p ${s.topP}`);
    if (s.minP > 0) parts.push(`min-p ${s.minP}`);
  }
  if (isPenalized(s)) {
    if (s.repeatPenalty !== 1) parts.push(`repeat-penalty ${s.repeatPenalty}`);
    if (s.presencePenalty !== 0) parts.push(`presence-penalty ${s.presencePenalty}`);
    if (s.frequencyPenalty !== 0) parts.push(`frequency-penalty ${s.frequencyPenalty}`);
    parts.push(`repeat-last-n ${s.repeatLastN}`);
  }
  if (seed && s.temperature > 0) parts.push(`seed ${s.seed}`);
  return parts.join(', ');
}

// The flags the commands share, parsed strictly: a bad value is one line naming the flag.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { LLAMA_CPP_SAMPLING, randomSeed, samplingRange, type SamplingOptions } from '../engine/sampling.js';

const MAX_INT32 = 2 ** 31 - 1;
// Only what a person types: JavaScript's Number() also takes '0x10', ' 8', '' (as 0) and '1e3'.
const DECIMAL_INTEGER = /^-?\d+$/;
const DECIMAL_NUMBER = /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** A whole number written in decimal digits, from min to max; anything else is one line naming the flag. */
export function integerIn(name: string, min: number, max = MAX_INT32) {
  return (value: string): number => {
    const n = Number(value);
    if (!DECIMAL_INTEGER.test(value) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}, not "${value}".`);
    return n;
  };
}

export const positiveInteger = (name: string) => integerIn(name, 1);
export const integer = (name: string) => integerIn(name, -MAX_INT32);

/** A decimal number (1e-4 allowed) for which `check` holds. */
export function decimal(name: string, check: (x: number) => boolean, what: string, pattern = DECIMAL_NUMBER) {
  return (value: string): number => {
    const x = Number(value);
    if (!pattern.test(value) || !Number.isFinite(x) || !check(x)) throw new InvalidArgumentError(`${name} must be ${what}, not "${value}".`);
    return x;
  };
}

/** llama.cpp's GGML_MAX_N_THREADS. */
const MAX_THREADS = 512;

/**
 * Another spelling of an option (llama-cli's): hidden from the help, its value goes where `target`'s does.
 * `flags` is the alias's own spelling, e.g. '--ctx-size <n>'.
 */
export function aliasOption(command: Command, flags: string, target: string, parse: (value: string) => unknown): Command {
  const option = new Option(flags).argParser(parse).hideHelp();
  command.addOption(option);
  return command.hook('preAction', (_, action) => {
    const value = action.getOptionValue(option.attributeName());
    if (value !== undefined) action.setOptionValue(target, value);
  });
}

export const FAST_KERNELS_HELP =
  "llama.cpp's own kernel choices (on CUDA its batched kernels, an F16 cache and flash attention); " +
  'Jacobi output may then differ from plain decoding at near-ties (--verify and bench count how often)';

/** --rpc's value: host:port endpoints, comma-separated, as llama.cpp's tools take them. */
export function rpcServers(value: string): string[] {
  const servers = value.split(',').map((s) => s.trim());
  for (const server of servers) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(server);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      throw new InvalidArgumentError(`--rpc takes host:port[,host:port...] (a port from 1 to 65535), not "${server}".`);
    }
  }
  return servers;
}

/** The options of every subcommand that loads a model; `context` adds those of subcommands that decode. */
export function modelOptions(command: Command, { context = true } = {}): Command {
  command.option('-m, --model <file>', 'GGUF model: a file, hf:ORG/REPO/FILE.gguf or an http(s) URL, pulled once into the cache (default: $CLLM_MODEL)');
  if (context) {
    command
      .option('-c, --ctx <n>', 'context size in tokens (default: the trained length, at most 4096)', positiveInteger('--ctx'))
      .option('-b, --batch-size <n>', 'most tokens in one forward pass; longer prompts go in several (default 512)', positiveInteger('--batch-size'))
      .option('-t, --threads <n>', 'CPU threads (default: all cores)', integerIn('--threads', 1, MAX_THREADS));
    aliasOption(command, '--ctx-size <n>', 'ctx', positiveInteger('--ctx-size'));
  }
  return command
    .option('--gpu-layers <n>', 'layers to offload to the GPU (default -1: all)', integerIn('--gpu-layers', -1))
    .option('--rpc <servers>', 'spread the layers over ggml-rpc-server processes: host:port[,host:port...]', rpcServers)
    .option('--no-mmap', 'read the model into memory instead of mapping the file')
    .option('--verbose', "show llama.cpp's logs");
}

/** The sampling settings as commander parses the flags: --temp names the temperature; no --seed, a random one. */
export type SamplingFlags = Omit<SamplingOptions, 'temperature' | 'seed'> & { temp: number; seed?: number };

function samplingFlag(key: keyof SamplingOptions) {
  const { flag, check, what } = samplingRange(key);
  const wholeNumber = key === 'topK' || key === 'repeatLastN' || key === 'seed';
  return decimal(flag, check, what, wholeNumber ? DECIMAL_INTEGER : DECIMAL_NUMBER);
}

/** llama-cli's sampling flags, names and defaults, except the temperature, whose default each command picks. */
export function samplingOptions(command: Command, temperature: number): Command {
  const d = LLAMA_CPP_SAMPLING;
  return command
    .option('--temp <t>', 'temperature; 0 decodes greedily', samplingFlag('temperature'), temperature)
    .option('--top-k <n>', 'sample among the k likeliest tokens (0: off)', samplingFlag('topK'), d.topK)
    .option('--top-p <p>', 'sample among the likeliest tokens that add up to probability p (1: off)', samplingFlag('topP'), d.topP)
    .option('--min-p <p>', 'drop tokens less than p times as likely as the likeliest (0: off)', samplingFlag('minP'), d.minP)
    .option('--repeat-penalty <x>', 'penalize the recent tokens: divide their logits by x (1: off)', samplingFlag('repeatPenalty'), d.repeatPenalty)
    .option('--repeat-last-n <n>', 'recent tokens, the prompt included, that the penalties look at (0: off)', samplingFlag('repeatLastN'), d.repeatLastN)
    .option('--presence-penalty <x>', 'subtract x from the logit of each recent token (0: off)', samplingFlag('presencePenalty'), d.presencePenalty)
    .option('--frequency-penalty <x>', 'subtract x per occurrence among the recent tokens (0: off)', samplingFlag('frequencyPenalty'), d.frequencyPenalty)
    .option('--seed <n>', 'sampling seed: the same seed, settings and prompt give the same text with every decoder (default or -1: random)', (value) => (value === '-1' ? undefined : samplingFlag('seed')(value)));
}

/** The sampling settings of the flags; a random seed is drawn into flags.seed, so that it is drawn once. */
export function samplingFrom(flags: SamplingFlags): SamplingOptions {
  flags.seed ??= randomSeed();
  const { temp, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty, seed } = flags;
  return { temperature: temp, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty, seed };
}

/** What modelOptions parses: the flags of every command that loads a model, and of those that decode. */
export interface ModelFlags {
  model?: string;
  gpuLayers?: number;
  rpc?: string[];
  mmap?: boolean;
  verbose?: boolean;
  ctx?: number;
  batchSize?: number;
  threads?: number;
}

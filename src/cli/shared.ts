// Helpers shared by the subcommands: model loading with a progress bar, option parsing, formatting.
import chalk from 'chalk';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { availableParallelism } from 'node:os';
import { accessSync, constants, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { native } from '../engine/addon.js';
import { CllmError } from '../engine/errors.js';
import { Model } from '../engine/model.js';
import { parsePromptFile, type BenchPrompt } from '../tasks/prompts.js';
import { pullModel, type PullProgress, type PullResult } from '../model-files/pull.js';
import { isRemoteSpec } from '../model-files/spec.js';
import { LLAMA_CPP_SAMPLING, randomSeed, samplingRange, type SamplingOptions } from '../engine/sampling.js';

export function fail(message: string, exitCode = 1): void {
  // A message may quote a damaged file (a tensor name with a newline in it): it stays one line.
  const oneLine = message.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  process.stderr.write(`${chalk.red('cllm:')} ${oneLine}\n`);
  process.exitCode = exitCode;
}

export function modelPath(option: string | undefined): string {
  const path = option ?? process.env.CLLM_MODEL;
  if (!path) throw new CllmError('no model given: pass -m/--model FILE.gguf or set CLLM_MODEL', 2);
  return path;
}

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

export const positiveNumber = (name: string) => decimal(name, (x) => x > 0, 'a number above 0');
export const nonNegativeNumber = (name: string) => decimal(name, (x) => x >= 0, 'a number >= 0');

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

export interface LoadFlags {
  model?: string;
  gpuLayers?: number;
  rpc?: string[];
  mmap?: boolean;
  verbose?: boolean;
}

/** Pulls a model into the cache (once), with a progress bar on an interactive stderr; Ctrl-C keeps the part file. */
export async function pullWithProgress(spec: string, cacheDir?: string): Promise<PullResult> {
  const progress = downloadProgress();
  const { signal, release } = interruptible();
  try {
    return await pullModel(spec, { cacheDir, onProgress: progress.update, signal });
  } finally {
    progress.stop();
    release();
  }
}

/** Loads the model, with a progress bar on an interactive stderr. */
export async function loadModel(flags: LoadFlags): Promise<Model> {
  const spec = modelPath(flags.model);
  const path = isRemoteSpec(spec) ? (await pullWithProgress(spec)).path : spec;
  native().setVerbose(Boolean(flags.verbose));
  if (flags.gpuLayers !== undefined && flags.gpuLayers !== 0 && native().buildInfo().backend === 'cpu' && !flags.rpc) {
    warn('--gpu-layers has no effect: this cllm was built for the CPU (reinstall with CLLM_GPU=cuda, or add --rpc)');
  }
  const showBar = process.stderr.isTTY && !flags.verbose;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `loading ${basename(path)} {bar} {percentage}%`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  const { release } = interruptible();
  if (showBar) bar.start(100, 0);
  try {
    return await Model.load(path, { gpuLayers: flags.gpuLayers, rpc: flags.rpc, useMmap: flags.mmap === false ? false : undefined, onProgress: showBar ? (f) => bar.update(Math.round(f * 100)) : undefined });
  } finally {
    if (showBar) bar.stop();
    release();
  }
}

/** A progress bar on stderr where it is a terminal; undefined elsewhere, so that logs stay clean. */
export function progressBar(format: string): cliProgress.SingleBar | undefined {
  if (!process.stderr.isTTY) return undefined;
  return new cliProgress.SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
}

/** Reads and parses a prompt file (JSONL or plain text); a missing file or a malformed line is one CllmError. */
export function readPromptFile(file: string): BenchPrompt[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CllmError(`cannot read the prompt file ${file}`);
  }
  try {
    return parsePromptFile(text, basename(file));
  } catch (err) {
    throw new CllmError((err as Error).message);
  }
}

/**
 * Aborted when the reader of stdout goes away (`cllm run ... | head`): the end of the output, not an error.
 * Decoding then stops after the current step, as for Ctrl-C, and the process ends by itself, with code 0.
 */
export const outputClosed = new AbortController();

/**
 * Ctrl-C handling while loading and generating: the first press stops the model load or the forward pass
 * under way (llama.cpp checks for it), keeping the output so far; a second press exits at once. A closed
 * stdout stops decoding after the current step. Returns the signal and a function that removes the handlers.
 */
export function interruptible(): { signal: AbortSignal; release: () => void } {
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) exitRestoringTerminal(130);
    abort.abort();
    native().setInterrupted(true);
  };
  const onOutputClosed = () => abort.abort();
  process.on('SIGINT', onSigint);
  if (outputClosed.signal.aborted) abort.abort();
  else outputClosed.signal.addEventListener('abort', onOutputClosed);
  const release = () => {
    process.off('SIGINT', onSigint);
    outputClosed.signal.removeEventListener('abort', onOutputClosed);
    if (abort.signal.aborted) native().setInterrupted(false);
  };
  return { signal: abort.signal, release };
}

/** Shows the cursor that progress bars hide and leaves the raw mode of a chat: for exits that skip their clean-up. */
export function restoreTerminal(): void {
  if (process.stderr.isTTY) process.stderr.write('\x1b[?25h');
  if (process.stdin.isTTY && process.stdin.isRaw) process.stdin.setRawMode(false);
}

export function exitRestoringTerminal(code: number): never {
  restoreTerminal();
  process.exit(code);
}

/** "no space left on the device", not "ENOSPC: no space left on device, write". */
export function describeWriteError(err: NodeJS.ErrnoException): string {
  const known: Record<string, string> = { ENOSPC: 'no space left on the device', EISDIR: 'it is a directory', EACCES: 'permission denied', ENOENT: 'no such directory', EROFS: 'the file system is read-only', EDQUOT: 'the disk quota is exceeded' };
  return (err.code && known[err.code]) ?? err.message.split('\n')[0];
}

/** An output file is checked before a long run, not after it: not a directory, in a writable folder. */
export function checkOutputPath(file: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(file).isDirectory();
  } catch {
    // not there yet: its folder decides
  }
  if (isDirectory) throw new CllmError(`cannot write ${file}: it is a directory`);
  try {
    accessSync(dirname(resolve(file)), constants.W_OK);
  } catch {
    throw new CllmError(`cannot write ${file}: its folder does not exist or is not writable`);
  }
}

/** Writes through a temporary file in the same folder and a rename: a full disk leaves the old file or none, never half of one. */
export function writeFileAtomically(file: string, text: string): void {
  const temporary = join(dirname(resolve(file)), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, file);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw new CllmError(`cannot write ${file}: ${describeWriteError(err as NodeJS.ErrnoException)}`);
  }
}

export function warn(message: string): void {
  process.stderr.write(chalk.yellow(`cllm: warning: ${message}`) + '\n');
}

/** Settings that work, but badly: more threads than cores, or more context than the model was trained on. */
export function warnAboutContext(model: Model, flags: { threads?: number; ctx?: number }): void {
  const cores = availableParallelism();
  if (flags.threads && flags.threads > cores) warn(`--threads ${flags.threads} is more than the ${cores} cores here, which slows decoding down`);
  const trained = model.info.trainedContextLength;
  if (flags.ctx && trained && flags.ctx > trained) warn(`--ctx ${flags.ctx} is more than the ${trained} tokens the model was trained on; text past that may degrade`);
}

export function checkBlockFits(block: number, contextSize: number): void {
  if (block > contextSize) throw new CllmError(`a block of ${block} tokens does not fit in the context of ${contextSize}: lower --block or raise --ctx`, 2);
}

/** Jacobi decoding rolls the KV cache back after every step, which recurrent state cannot do. */
export function checkBlock(model: Model, block: number): void {
  if (block > 1 && model.info.recurrent) {
    throw new CllmError(`${basename(model.info.path)} is a recurrent model (${model.info.architecture}), which cannot roll its state back: use --decoder ar`);
  }
}

export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(2)} ${units[i]}`;
}

/** "model 60%, suffix-match 31%, token-recycling 9%": where generated tokens came from, out of `total`. */
export function originShares(counts: Record<string, number>, total: number): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([origin, n]) => `${origin} ${((100 * n) / total).toFixed(0)}%`)
    .join(', ');
}

/** A download progress bar on an interactive stderr (percent, bytes, speed, ETA); elsewhere `update` does nothing. */
function downloadProgress(): { update: (progress: PullProgress) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | undefined;
  let file: string | undefined;
  let started = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
    file = undefined;
  };
  const update = (progress: PullProgress) => {
    if (progress.file !== file) {
      stop();
      file = progress.file;
      started = Date.now();
      const known = progress.totalBytes !== undefined;
      bar = progressBar(known ? `${file} {bar} {percentage}% {received}/{size} {speed} ETA {eta_formatted}` : `${file} {received} {speed}`);
      bar?.start(progress.totalBytes ?? 0, progress.receivedBytes, payload(progress, started));
      return;
    }
    bar?.update(progress.receivedBytes, payload(progress, started));
  };
  return { update, stop };
}

function payload(progress: PullProgress, started: number): Record<string, string> {
  const seconds = (Date.now() - started) / 1000;
  // Bytes of this session only: a resumed prefix came from the disk, not the network.
  const speed = seconds > 0.5 ? `${humanBytes(Math.round((progress.receivedBytes - progress.resumedFrom) / seconds))}/s` : '';
  return { received: humanBytes(progress.receivedBytes), size: humanBytes(progress.totalBytes ?? 0), speed };
}

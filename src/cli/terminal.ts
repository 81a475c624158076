// The terminal: one-line errors and warnings, Ctrl-C, progress bars, and a terminal left as it was found.
import chalk from 'chalk';
import cliProgress from 'cli-progress';
import { native } from '../engine/addon.js';

/** Control characters as \xNN, so that text from a file or a model cannot break a line or move the cursor. */
export function escapeControl(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function fail(message: string, exitCode = 1): void {
  // A message may quote a damaged file (a tensor name with a newline in it): it stays one line.
  process.stderr.write(`${chalk.red('cllm:')} ${escapeControl(message)}\n`);
  process.exitCode = exitCode;
}

export function warn(message: string): void {
  process.stderr.write(chalk.yellow(`cllm: warning: ${message}`) + '\n');
}

/** A progress bar on stderr where it is a terminal; undefined elsewhere, so that logs stay clean. */
export function progressBar(format: string): cliProgress.SingleBar | undefined {
  if (!process.stderr.isTTY) return undefined;
  return new cliProgress.SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
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

/**
 * Runs a long task that Ctrl-C stops (through the signal it gets) with a progress bar of `total` steps on an
 * interactive stderr, and takes both away when the task ends, however it ends.
 */
export async function withProgress<T>(format: string, total: number, task: (signal: AbortSignal, bar?: cliProgress.SingleBar) => Promise<T>, payload?: object): Promise<T> {
  const interrupt = interruptible();
  const bar = progressBar(format);
  bar?.start(total, 0, payload);
  try {
    return await task(interrupt.signal, bar);
  } finally {
    bar?.stop();
    interrupt.release();
  }
}

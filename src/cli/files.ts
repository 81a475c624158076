// Files a command reads and writes: prompt files, and outputs that are checked before a long run and never
// left half-written.
import { accessSync, constants, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CllmError } from '../engine/errors.js';
import { parsePromptFile, type BenchPrompt } from '../tasks/prompt-sets.js';

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

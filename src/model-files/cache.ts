// The model cache: one folder, a path in it for every remote model, so that a model is downloaded once, and
// the file operations of a download into it, whose failures (a full disk) read as one line.
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { CllmError } from '../engine/errors.js';
import { describeSource, safeName, urlPathSegments, type ModelSource } from './spec.js';

export function defaultCacheDir(): string {
  if (process.env.CLLM_CACHE) return resolve(process.env.CLLM_CACHE);
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'cllm');
}

/** Where a source lives in the cache: <cache>/hf/ORG/REPO/REVISION/FILE or <cache>/url/HOST/PATH. */
export function cachePath(source: ModelSource, cacheDir: string): string {
  const root = resolve(cacheDir);
  const parts =
    source.kind === 'hf'
      ? ['hf', ...source.repo.split('/'), source.revision, ...source.file.split('/')]
      : ['url', safeName(source.url.host.replace(/[^\w.-]/g, '_')), ...urlPathSegments(source.url)];
  const path = join(root, ...parts);
  // The parsers already refuse what could climb out; this keeps it so should they ever change.
  const inside = relative(root, path);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) throw new CllmError(`refusing to store ${describeSource(source)} outside the cache ${root}`, 2);
  return path;
}

// The rename must not land before the bytes do, or a crash could leave a short file under the final name.
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Keeps two pulls of the same file from appending to one part file. */
export async function lock(path: string): Promise<() => Promise<void>> {
  const lockFile = `${path}.lock`;
  try {
    await writeFile(lockFile, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileSystemError(lockFile, err as NodeJS.ErrnoException);
    const holder = Number(await readFile(lockFile, 'utf8').catch(() => ''));
    if (isRunning(holder)) throw new CllmError(`another cllm (pid ${holder}) is downloading ${basename(path)}: wait for it, or remove ${lockFile} if it is gone`);
    // Left by a process that died: take it over.
    await inFileSystem(lockFile, () => writeFile(lockFile, String(process.pid)));
  }
  return () => rm(lockFile, { force: true });
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileSystemError(path, err as NodeJS.ErrnoException);
  }
}

export async function inFileSystem<T>(path: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw fileSystemError(path, err as NodeJS.ErrnoException);
  }
}

export function fileSystemError(path: string, err: NodeJS.ErrnoException): CllmError {
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return new CllmError(`the disk is full: cannot write ${path}; free some space and pull again to resume`);
  return new CllmError(`cannot ${err.syscall ?? 'use'} ${path}: ${err.code ?? err.message}`);
}

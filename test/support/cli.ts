// Running the built `cllm` command as a user would, and scratch folders that go away with the test file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const cllm = fileURLToPath(new URL('../../bin/cllm.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `cllm ARGS` to the end, with `env` added to this process's environment. */
export function runCli(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): CliResult {
  const result = spawnSync(process.execPath, [cllm, ...args], { input: options.input, encoding: 'utf8', timeout: options.timeout ?? 60_000, env: { ...process.env, ...options.env } });
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** A new folder under the system's temporary one, removed when the test file's tests have run. Call it at a file's top level. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

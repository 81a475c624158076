// Running the built `cllm` command as a user would, in pipes or in a real terminal, and scratch folders that
// go away with the test file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pty from 'node-pty';
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

/** A real pseudo-terminal running cllm, with helpers to wait for output. */
export function terminal(args: string[]) {
  const proc = pty.spawn(process.execPath, [cllm, ...args], { cols: 120, rows: 40, env: { ...process.env, NO_COLOR: '1' } as Record<string, string> });
  let raw = '';
  proc.onData((data) => (raw += data));
  // Cursor movement and colour codes are dropped, leaving the text a user reads.
  const text = () => raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
  const exited = new Promise<number>((resolve) => proc.onExit(({ exitCode }) => resolve(exitCode)));
  const waitFor = async (pattern: RegExp, from = 0, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(text().slice(from))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; screen:\n${text()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { proc, exited, waitFor, get screen() { return text(); } };
}

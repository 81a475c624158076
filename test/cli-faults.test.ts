// Faults from outside: bad flag values, a full disk, outputs that are directories, a closed stderr, signals,
// Ctrl-C in the middle of a prefill, and a model file truncated while a run has it mapped. Each ends with one
// line (or none) and the right exit code, never a stack trace.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import pty from 'node-pty';
import { describe, expect, it } from 'vitest';
import { fixtureModel, haveStories, havePycoder, pycoderModel, storiesModel } from './support/models.js';
import { cllm, runCli, scratchDir } from './support/cli.js';

const model = haveStories ? storiesModel : fixtureModel;
const scratch = scratchDir('cllm-faults-');

/** cllm with `args`, or a shell command line that runs it as $CLLM (for redirections and closed streams). */
function run(args: string[], options: { input?: string; shell?: string } = {}) {
  if (!options.shell) return runCli(args, { input: options.input, env: { NO_COLOR: '1' } });
  const result = spawnSync('sh', ['-c', options.shell], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1', CLLM: cllm } });
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

function expectOneLine(stderr: string, pattern: RegExp) {
  expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
  expect(stderr.trim()).toMatch(pattern);
  expect(stderr).not.toMatch(/^\s+at /m);
}

const BAD_VALUES = ['0x10', ' 8', '1e3', '', '+5', '99999999999999999999', 'ten', '-2'];

describe('numeric flags take plain decimal numbers in range', () => {
  // Beyond the common bad values, each flag's own out-of-range ones.
  it.each([
    ['run', '--ctx', ['0', '-1', '2147483648']],
    ['run', '-c', ['0']],
    ['run', '--batch-size', ['0', '2147483648']],
    ['run', '--threads', ['0', '513', '2147483648']],
    ['run', '--gpu-layers', ['2147483648']],
    ['run', '--block', ['0', '-1']],
    ['run', '--max-tokens', ['0', '2147483648']],
    ['run', '-n', ['0']],
    ['run', '--seed', ['4294967296', '1.5']],
    ['run', '--top-k', ['-1', '2.5']],
    ['run', '--temp', ['0x1', '101', 'NaN', 'Infinity']],
    ['bench', '--repeat', ['0']],
    ['bench', '--limit', ['0']],
    ['bench', '--block', ['0', '4,0', '4, 8']],
  ] as const)('%s %s', (command, flag, own) => {
    for (const value of [...BAD_VALUES, ...own]) {
      const { code, stderr } = run([command, '-m', model, flag, value, ...(command === 'run' ? ['hi'] : [])]);
      expect(code, `${flag} "${value}": ${stderr}`).toBe(2);
      expectOneLine(stderr, new RegExp(`${flag.replace(/^-(\w)$/, '.*')}|must be`));
    }
  });

  it('a context whose KV cache cannot fit in memory is refused, saying how much it needs', () => {
    const { code, stderr } = run(['run', '-m', model, '--ctx', '2147483647', 'hi']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/a context of 2147483647 tokens needs [\d.]+ GiB of KV cache, more than this machine's [\d.]+ GiB of memory: lower --ctx/);
  });
});

describe.skipIf(!haveStories)('command-line habits', () => {
  it("takes llama-cli's short flags: -p, -n (tokens), -c, -b, -t; -B is the block", () => {
    const short = run(['run', '-m', model, '--raw', '--temp', '0', '-p', 'Once upon a time', '-n', '12', '-c', '256', '-b', '64', '-t', '1', '-B', '4', '--json']);
    const long = run(['run', '-m', model, '--raw', '--temp', '0', '--max-tokens', '12', '--ctx-size', '256', '--threads', '1', '--decoder', 'jacobi', '--block', '4', '--json', 'Once upon a time']);
    expect(short.code, short.stderr).toBe(0);
    const json = JSON.parse(short.stdout);
    expect(json.stats).toMatchObject({ generatedTokens: 12, decoder: 'jacobi', block: 4 });
    expect(json.text).toBe(JSON.parse(long.stdout).text);
    expect(JSON.parse(run(['run', '-m', model, '--raw', '--temp', '0', '--n-predict', '5', '--json', 'Once']).stdout).stats.generatedTokens).toBe(5);
  });

  it('refuses an empty prompt, and a prompt given twice', () => {
    for (const [args, input] of [[['""'], undefined], [[''], undefined], [[], ''], [['-'], '\n']] as const) {
      const { code, stderr } = run(['run', '-m', model, ...args.map((a) => (a === '""' ? '' : a))], { input: input ?? undefined });
      expect(code).toBe(2);
      expectOneLine(stderr, /the prompt is empty/);
    }
    expectOneLine(run(['run', '-m', model, '-p', 'a', 'b']).stderr, /give the prompt once/);
  });

  it('cllm info takes the model as an argument', () => {
    const positional = run(['info', model, '--json']);
    expect(positional.code).toBe(0);
    expect(JSON.parse(positional.stdout).path).toBe(model);
  });

  it('warns that --system does nothing without a chat template', () => {
    const { code, stderr, stdout } = run(['run', '-m', model, '--temp', '0', '-n', '4', '--system', 'Be brief.', 'Once']);
    expect(code).toBe(0);
    expect(stderr).toMatch(/^cllm: warning: --system is ignored: stories260K\.gguf has no chat template$/m);
    expect(stdout).toBe(run(['run', '-m', model, '--temp', '0', '-n', '4', 'Once']).stdout);
  });
});

describe.skipIf(!haveStories)('output failures', () => {
  it('a full stdout is one line naming stdout, exit code 1', () => {
    const { code, stderr } = run([], { shell: `node "$CLLM" run -m ${model} --raw --temp 0 -n 64 "Once upon a time" > /dev/full` });
    expect(code).toBe(1);
    expectOneLine(stderr, /^cllm: cannot write the output to stdout: no space left on the device$/);
  });

  it('bench refuses a directory or a missing folder as an output before decoding, and leaves no file', () => {
    for (const [flag, path, pattern] of [
      ['--json', scratch, /cannot write .*: it is a directory/],
      ['--report', join(scratch, 'missing', 'report.html'), /its folder does not exist or is not writable/],
    ] as const) {
      const t0 = Date.now();
      const { code, stderr } = run(['bench', '-m', model, '--limit', '1', '-n', '8', flag, path]);
      expect(code).toBe(1);
      expectOneLine(stderr, pattern);
      expect(Date.now() - t0).toBeLessThan(20_000);
    }
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('bench writes its files whole and says where', () => {
    const json = join(scratch, 'bench.json');
    const { code, stderr } = run(['bench', '-m', model, '--limit', '1', '-n', '8', '--repeat', '1', '--decoders', 'ar', '--json', json]);
    expect(code).toBe(0);
    expect(stderr).toContain(`wrote ${json}`);
    expect(readdirSync(scratch).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(existsSync(json)).toBe(true);
  });

  it('a closed stderr does not change the outcome', () => {
    const { code, stdout } = run([], { shell: `node "$CLLM" run -m ${model} --raw --temp 0 -n 8 "Once upon a time" 2>&-` });
    expect(code).toBe(0);
    expect(stdout.length).toBeGreaterThan(0);
  });
});

describe.skipIf(!haveStories)('signals', () => {
  it('SIGTERM and SIGHUP in a chat show the cursor again and end by that signal', async () => {
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
      const proc = pty.spawn(process.execPath, [cllm, 'run', '-m', model], { cols: 100, rows: 30, env: { ...process.env, NO_COLOR: '1' } as Record<string, string> });
      let screen = '';
      proc.onData((d) => (screen += d));
      const exited = new Promise<{ exitCode: number; signal?: number }>((resolve) => proc.onExit(resolve));
      const deadline = Date.now() + 30_000;
      while (!/\/help/.test(screen) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      proc.kill(signal);
      const { signal: bySignal } = await exited;
      expect(bySignal, screen).toBe(signal === 'SIGTERM' ? 15 : 1);
      expect(screen).toContain('\x1b[?25h');
    }
  });

  it('the crash guard turns a fatal signal into one line and exit code 1', async () => {
    const child = spawn(process.execPath, [cllm, 'run', '-m', model, '--raw', '--temp', '0', '-n', '100000', '-c', '2048', '-B', '8', 'Once'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.kill('SIGSEGV');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    expect(signal).toBeNull();
    expect(code).toBe(1);
    expectOneLine(stderr, /^cllm: llama\.cpp crashed \(segmentation fault\)/);
  });

  it('a model file truncated under a run: one line, exit code 1, the text so far kept', async () => {
    const copy = join(mkdtempSync(join(scratch, 'sigbus-')), 'model.gguf');
    copyFileSync(havePycoder ? pycoderModel : model, copy);
    const child = spawn(process.execPath, [cllm, 'run', '-m', copy, '--raw', '--temp', '0', '-n', '100000', '-c', '1024', '--decoder', 'ar', 'def main():'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => ((stdout += d), resolve())));
    truncateSync(copy, 0);
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    expect(signal).toBeNull();
    expect(code).toBe(1);
    expectOneLine(stderr, /^cllm: the model file changed or was truncated while in use \(copy it first, or pass --no-mmap\)$/);
    expect(stdout.length).toBeGreaterThan(0);
  });

  it('Ctrl-C stops a long prefill inside llama.cpp, with exit code 130', async () => {
    const prompt = 'the little girl played with her ball in the park. '.repeat(700);
    const child = spawn(process.execPath, [cllm, 'run', '-m', havePycoder ? pycoderModel : model, '--raw', '-c', '16384', '-b', '8192', '-t', '1', '-n', '4', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(prompt);
    await new Promise((r) => setTimeout(r, 2500));
    const sent = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(Date.now() - sent).toBeLessThan(5000);
    expect(code, stderr).toBe(130);
    expect(stderr.trim().split('\n').at(-1)).toBe('cllm: interrupted');
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});

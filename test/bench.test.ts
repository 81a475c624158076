// cllm bench: the JSON schema, the prompt files, Ctrl-C, the HTML report rendered in headless Chromium, and
// which outputs count as degenerate (looping).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarize, type BenchRow } from '../src/tasks/bench.js';
import { parsePromptFile } from '../src/tasks/prompt-sets.js';
import { isDegenerate } from '../src/tasks/repetition.js';
import { fixtureModel } from './support/models.js';
import { runCli, scratchDir, terminal } from './support/cli.js';

const scratch = scratchDir('cllm-bench-test-');
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(existsSync);
if (!chromium) console.warn('Chromium not found (apt-get install chromium): the HTML report rendering test is skipped');

const bench = (args: string[]) => runCli(['bench', '-m', fixtureModel, ...args], { timeout: 120_000 });

describe('cllm bench --fast-kernels', () => {
  it('records that its kernels are not exact, and says so in the summary', () => {
    const json = JSON.parse(bench(['--limit', '1', '--max-tokens', '8', '--repeat', '1', '--block', '4', '--fast-kernels', '--json', '-']).stdout);
    expect(json.settings.exactKernels).toBe(false);
    const table = bench(['--limit', '1', '--max-tokens', '8', '--repeat', '1', '--block', '4', '--fast-kernels']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/; fast kernels\n/);
  });
});

describe('cllm bench --json', () => {
  it('writes the documented schema', () => {
    const { code, stdout } = bench(['--limit', '2', '--max-tokens', '16', '--repeat', '2', '--block', '2,4', '--json', '-']);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({ schema: 'cllm-bench/1', interrupted: false, bestBlock: expect.any(Number) });
    expect(Date.parse(r.date)).not.toBeNaN();
    expect(r.command).toMatch(/^cllm bench /);
    expect(r.model).toMatchObject({ architecture: 'llama', vocabularySize: expect.any(Number), path: fixtureModel });
    expect(r.machine).toEqual({ cpu: expect.any(String), cores: expect.any(Number), backend: 'cpu', gpu: null });
    expect(r.llamaCppCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(r.settings).toEqual({ prompts: 'chat', promptCount: 2, decoders: ['ar', 'auto', 'jacobi'], blocks: [2, 4], maxTokens: 16, repeat: 2, threads: expect.any(Number), contextSize: expect.any(Number), sampling: expect.objectContaining({ temperature: 0 }), exactKernels: true });

    // 2 prompts x 4 variants x 2 repeats, interleaved by round.
    expect(r.results).toHaveLength(16);
    expect(r.results.slice(0, 4).map((x: { decoder: string; block: number }) => `${x.decoder}${x.block}`)).toEqual(['ar1', 'auto0', 'jacobi2', 'jacobi4']);
    for (const row of r.results) {
      expect(Object.keys(row).sort()).toEqual(
        ['acceptedPerStep', 'block', 'decodeMs', 'decoder', 'degenerate', 'forwardMs', 'generatedTokens', 'identical', 'prefillMs', 'prompt', 'promptTokens', 'repeat', 'scoredPerStep', 'sources', 'steps', 'tokensPerSecond', 'tokensPerStep'].sort(),
      );
      expect(row.identical).toBe(true);
      expect(row.degenerate).toBe(false); // 16 tokens: too short to judge
      expect(row.generatedTokens).toBe(16);
      expect(row.tokensPerStep).toBeCloseTo(row.generatedTokens / row.steps);
      expect(row.acceptedPerStep.reduce((a: number, n: number) => a + n, 0)).toBe(row.steps);
      expect(Object.values(row.sources as Record<string, number>).reduce((a, n) => a + n, 0)).toBe(row.generatedTokens);
      expect(row.forwardMs).toBeLessThanOrEqual(row.decodeMs);
    }

    expect(r.summary.map((s: { decoder: string; block: number }) => `${s.decoder}${s.block}`)).toEqual(['ar1', 'auto0', 'jacobi2', 'jacobi4']);
    for (const s of r.summary) {
      expect(s).toMatchObject({ runs: 4, identical: '4/4', tokensPerStep: expect.any(Number), tokensPerSecond: expect.any(Number), speedupVsAr: expect.any(Number), scoredPerStep: expect.any(Number), hostShare: expect.any(Number) });
      expect(s.sources.model).toBeGreaterThan(0);
      expect(s).toMatchObject({ degenerateRuns: 0, tokensPerStepClean: s.tokensPerStep });
      expect(s.speedupMin).toBeLessThanOrEqual(s.speedupVsAr);
      expect(s.speedupMax).toBeGreaterThanOrEqual(s.speedupVsAr);
    }
    expect(r.summary[0].speedupVsAr).toBe(1);
    expect(r.trajectory).toMatchObject({ prompt: 0, block: 4 });
    expect(r.trajectory.steps[0]).toMatchObject({ step: 1, accepted: expect.any(Number), fedText: expect.any(Array), predictedText: expect.any(Array) });
  });

  it('prints a readable table without --json', () => {
    const { code, stdout, stderr } = bench(['--limit', '1', '--max-tokens', '8', '--repeat', '1', '--block', '4']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/decoder +block +tokens\/step +tok\/step \(clean\) +degenerate +tok\/s \(median\) +speedup vs AR/);
    expect(stdout).toMatch(/^jacobi +4 +([\d.]+) +\1 +0\/1 +[\d.]+ +[\d.]+x \([\d.]+-[\d.]+\) +1\/1 +[\d.]+%$/m);
    expect(stdout).toMatch(/^auto +- +[\d.]+ +[\d.]+ +0\/1 +[\d.]+ +[\d.]+x/m);
    expect(stdout).toMatch(/^auto: [\d.]+ tokens scored per pass; output by origin: model \d+%/m);
    expect(stdout).toMatch(/best Jacobi block on this machine: 4/);
    expect(stderr).toBe(''); // no progress bar off a terminal
  });
});

describe('prompt files', () => {
  it('parses JSONL with prompts and messages, and plain text', () => {
    const jsonl = '{"prompt": "hello"}\n\n{"messages": [{"role": "system", "content": "brief"}, {"role": "user", "content": "hi"}]}\n';
    expect(parsePromptFile(jsonl, 'p.jsonl')).toEqual([{ prompt: 'hello' }, { messages: [{ role: 'system', content: 'brief' }, { role: 'user', content: 'hi' }] }]);
    expect(parsePromptFile('first prompt\r\nsecond {prompt}\n\n', 'p.txt')).toEqual([{ prompt: 'first prompt' }, { prompt: 'second {prompt}' }]);
  });

  it.each([
    ['broken JSON', '{"prompt": "ok"}\n{"prompt": \n', /p\.jsonl:2: not valid JSON/],
    ['a wrong shape', '{"prompt": "ok"}\n{"text": "x"}\n', /p\.jsonl:2: expected \{"prompt"/],
    ['a bad message', '{"messages": [{"role": "user"}]}\n', /p\.jsonl:1: expected/],
    ['no prompts', '\n\n', /p\.jsonl: no prompts/],
  ])('names the line of %s', (_, text, message) => {
    expect(() => parsePromptFile(text, 'p.jsonl')).toThrow(message);
  });

  it('runs a plain-text prompt file, and reports a malformed JSONL line in one line', () => {
    const text = join(scratch, 'prompts.txt');
    writeFileSync(text, 'hello there\nthe little girl\n');
    const ok = bench(['--prompts', text, '--max-tokens', '8', '--repeat', '1', '--block', '4', '--json', '-']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).settings).toMatchObject({ prompts: text, promptCount: 2 });

    const bad = join(scratch, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "fine"}\n{"prompt": 3}\n');
    const failed = bench(['--prompts', bad]);
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim()).toMatch(/^cllm: bad\.jsonl:2: expected \{"prompt"/);
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('cllm bench output files', () => {
  it('refuses an unwritable --report or --json before running anything', () => {
    for (const flag of ['--report', '--json']) {
      const { code, stdout, stderr } = bench([flag, '/nonexistent/folder/out']);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.trim()).toBe('cllm: cannot write /nonexistent/folder/out: its folder does not exist or is not writable');
    }
  });
});

describe('interrupting cllm bench', () => {
  it('prints the summary of what finished on Ctrl-C', async () => {
    // In a terminal, so that the progress bar says when the first prompt's runs are done, however busy the machine.
    const t = terminal(['bench', '-m', fixtureModel, '--set', 'stories', '--max-tokens', '64', '--repeat', '3', '--block', '4,8']);
    // 20 runs or more: past the first prompt's 17 (its AR reference, then 4 variants x a warm-up and 3 repeats).
    await t.waitFor(/bench .* ([2-9]\d|\d{3,})\/\d+ runs/, 0, 60_000);
    t.proc.write('\x03');
    expect(await t.exited).toBe(130);
    expect(t.screen).toMatch(/interrupted: the summary covers the runs that finished/);
    expect(t.screen).toMatch(/^jacobi +8 /m);
  });
});

describe.skipIf(!chromium)('cllm bench --report', () => {
  it('writes a self-contained HTML report that renders in headless Chromium', () => {
    const html = join(scratch, 'report.html');
    const png = join(scratch, 'report.png');
    expect(bench(['--limit', '2', '--max-tokens', '24', '--repeat', '1', '--block', '2,4,8', '--report', html]).code).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // nothing to fetch, nothing to run
    expect(page.match(/<svg/g)!.length).toBeGreaterThanOrEqual(5); // 2 line charts + 3 distributions
    expect(page).toContain('class="fixed"');
    expect(page).toContain('<th>looping outputs</th>');

    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', `--user-data-dir=${join(scratch, 'chromium')}`];
    const dom = spawnSync(chromium!, [...flags, '--dump-dom', `file://${html}`], { encoding: 'utf8', timeout: 60_000 });
    expect(dom.stdout).toContain('Speedup vs autoregressive');
    expect(dom.stdout.match(/<circle/g)!.length).toBeGreaterThanOrEqual(6);
    spawnSync(chromium!, [...flags, `--screenshot=${png}`, '--window-size=1200,1400', `file://${html}`], { timeout: 60_000 });
    expect(statSync(png).size).toBeGreaterThan(30_000);
  });
});

describe('degenerate outputs', () => {
  const loop = (length: number, period: number, from = 0) => Array.from({ length }, (_, i) => from + (i % period));

  it('finds a loop, and passes code whose lines share shapes but not 16-token spans', () => {
    expect(isDegenerate(loop(128, 10))).toBe(true);
    expect(isDegenerate([...loop(40, 40, 100), ...loop(88, 7)])).toBe(true);
    // def f_k(x):\n    return x + k\n, twenty times: every 16-token span holds a different k.
    const code = Array.from({ length: 20 }, (_, k) => [1, 100 + k, 2, 3, 4, 5, 6, 7, 8, 3, 9, 200 + k, 6]).flat();
    expect(isDegenerate(code)).toBe(false);
  });

  it('judges no output under 32 tokens, and needs more than half of the spans repeated', () => {
    expect(isDegenerate(loop(31, 1))).toBe(false);
    expect(isDegenerate(loop(32, 1))).toBe(true);
    // 14 distinct tokens, then one token m times: m - 16 of the m + 14 - 15 spans repeat.
    const tail = (m: number) => [...loop(14, 14, 100), ...loop(m, 1)];
    expect(isDegenerate(tail(31))).toBe(false); // 15 of 30: half
    expect(isDegenerate(tail(32))).toBe(true); // 16 of 31
  });

  it('gives tokens per step over the outputs that do not loop, and counts the ones that do', () => {
    const run = (repeat: number, tokensPerStep: number, degenerate: boolean): BenchRow => ({
      prompt: 0, repeat, decoder: 'jacobi', block: 16, promptTokens: 8, generatedTokens: 128, steps: 128 / tokensPerStep, tokensPerStep, scoredPerStep: 16,
      sources: { model: 128 }, prefillMs: 1, decodeMs: 10, forwardMs: 9, tokensPerSecond: 100, identical: true, degenerate, acceptedPerStep: [],
    });
    const variants = [{ decoder: 'jacobi' as const, block: 16 }];
    const [mixed] = summarize([run(0, 2, false), run(1, 8, true), run(2, 4, false)], variants).summary;
    expect(mixed).toMatchObject({ runs: 3, tokensPerStep: 14 / 3, tokensPerStepClean: 3, degenerateRuns: 1 });
    const [looping] = summarize([run(0, 8, true)], variants).summary;
    expect(looping).toMatchObject({ tokensPerStepClean: null, degenerateRuns: 1 });
  });
});

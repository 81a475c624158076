// The built `cllm` command, spawned as a user would run it: pipes, JSON, errors, and a real terminal.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fixtureModel, haveStories, storiesModel } from './support/models.js';
import { cllm, runCli, terminal } from './support/cli.js';

const ESC = '\x1b';

const run = (args: string[], input?: string) => runCli(args, { input, env: { CLLM_MODEL: '' } });

const completionModel = haveStories ? storiesModel : fixtureModel;

describe('cllm run, one-shot and pipes', () => {
  it('reads a piped prompt and writes only the text to stdout', () => {
    const piped = run(['run', '-m', completionModel, '--raw', '--temp', '0', '--max-tokens', '24'], 'Once upon a time\n');
    expect(piped.code).toBe(0);
    expect(piped.stdout).not.toContain(ESC);
    expect(piped.stderr).toBe('');
    const json = JSON.parse(run(['run', '-m', completionModel, '--raw', '--temp', '0', '--max-tokens', '24', '--json', 'Once upon a time']).stdout);
    expect(piped.stdout).toBe(json.text + '\n');
    if (haveStories) expect(piped.stdout).toMatch(/^, there was a little/);
  });

  it('reads the prompt from stdin with "-"', () => {
    const dash = run(['run', '-m', completionModel, '--raw', '--seed', '5', '--max-tokens', '10', '-'], 'Tom had a big red ball');
    const argument = run(['run', '-m', completionModel, '--raw', '--seed', '5', '--max-tokens', '10', 'Tom had a big red ball']);
    expect(dash.code).toBe(0);
    expect(dash.stdout).toBe(argument.stdout);
  });

  it('prints one JSON object with --json, verified against autoregressive decoding', () => {
    const { code, stdout } = run(['run', '-m', completionModel, '--raw', '-B', '8', '--max-tokens', '40', '--json', '--verify', 'Lily and Tom']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(Object.keys(out).sort()).toEqual(['stats', 'stopReason', 'text', 'tokens', 'verify']);
    expect(typeof out.text).toBe('string');
    expect(out.tokens.every(Number.isInteger)).toBe(true);
    expect(['eos', 'length', 'context', 'interrupted']).toContain(out.stopReason);
    expect(Object.keys(out.stats).sort()).toEqual(
      ['block', 'decodeMs', 'decoder', 'forwardMs', 'generatedTokens', 'prefillMs', 'promptTokens', 'sampling', 'scoredPerStep', 'sources', 'steps', 'tokensPerSecond', 'tokensPerStep'].sort(),
    );
    expect(out.stats).toMatchObject({ decoder: 'jacobi', block: 8, generatedTokens: out.tokens.length });
    expect(out.stats.tokensPerStep).toBeCloseTo(out.tokens.length / out.stats.steps);
    expect(out.verify).toMatchObject({ identical: true });
  });

  it('decodes with auto by default, and -n alone asks for Jacobi', () => {
    const args = ['run', '-m', completionModel, '--raw', '--max-tokens', '60', '--json', '--verify', 'The little bird'];
    const auto = JSON.parse(run(args).stdout);
    expect(auto.stats).toMatchObject({ decoder: 'auto', generatedTokens: 60 });
    expect(auto.stats.sources.model).toBeGreaterThan(0);
    expect(auto.verify).toMatchObject({ identical: true });
    expect(JSON.parse(run([...args, '-B', '4']).stdout).stats).toMatchObject({ decoder: 'jacobi', block: 4 });
    expect(JSON.parse(run([...args, '-B', '4', '--decoder', 'ar']).stdout).stats).toMatchObject({ decoder: 'ar', block: 1 });
  });

  it('gives the same text with the autoregressive decoder', () => {
    const args = ['run', '-m', completionModel, '--raw', '--seed', '11', '--max-tokens', '60', '--json', 'The little bird'];
    const jacobi = JSON.parse(run([...args, '-B', '16']).stdout);
    const ar = JSON.parse(run([...args, '--decoder', 'ar']).stdout);
    expect(ar.stats).toMatchObject({ decoder: 'ar', block: 1, steps: ar.tokens.length });
    expect(jacobi.tokens).toEqual(ar.tokens);
  });

  it('writes the stats line to stderr with --stats, and a static trajectory off a terminal', () => {
    const { code, stdout, stderr } = run(['run', '-m', completionModel, '--raw', '-B', '16', '--max-tokens', '12', '--stats', '--show-trajectory', 'Once upon a time']);
    expect(code).toBe(0);
    expect(stdout.length).toBeGreaterThan(0);
    expect(stderr).toMatch(/^step +1 +pos +\d+ +accepted \d+\/16 /m);
    expect(stderr).toMatch(/12 tokens, \d+ steps, [\d.]+ tokens\/step, [\d.]+ tok\/s/);
  });

  it('ends quietly when the reader of its output goes away', async () => {
    const child = spawn(process.execPath, [cllm, 'run', '-m', fixtureModel, '--raw', '--temp', '0', '-B', '64', '--max-tokens', '4000', 'hello']);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('keeps the text and says so when the context fills up', () => {
    // llama.cpp rounds context sizes up to a multiple of 256; the random fixture never says EOS.
    const { code, stdout, stderr } = run(['run', '-m', fixtureModel, '--raw', '--temp', '0', '--ctx', '256', '--max-tokens', '1000', '--json', 'Once upon a time']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.stopReason).toBe('context');
    expect(out.stats.promptTokens + out.stats.generatedTokens).toBe(257);
    expect(stderr).toBe('');
    const plain = run(['run', '-m', fixtureModel, '--raw', '--temp', '0', '--ctx', '256', '--max-tokens', '1000', 'Once upon a time']);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toMatch(/the context is full \(256 tokens\): the text so far is kept/);
  });
});

describe('cllm run, sampling', () => {
  const sampled = (...extra: string[]) => JSON.parse(run(['run', '-m', completionModel, '--raw', '--temp', '1', '--max-tokens', '40', '--json', ...extra, 'Once upon a time']).stdout);

  it('a seed reproduces its text with every decoder, and another seed changes it', () => {
    const first = sampled('--seed', '3');
    expect(first.stats.sampling).toMatchObject({ temperature: 1, topK: 40, topP: 0.95, minP: 0.05, seed: 3 });
    expect(sampled('--seed', '3').tokens).toEqual(first.tokens);
    expect(sampled('--seed', '3', '--decoder', 'ar').tokens).toEqual(first.tokens);
    const jacobi = sampled('--seed', '3', '-B', '8', '--verify');
    expect(jacobi.tokens).toEqual(first.tokens);
    expect(jacobi.verify).toMatchObject({ identical: true });
    expect(sampled('--seed', '4').tokens).not.toEqual(first.tokens);
  });

  it('samples like llama-cli by default, and names the random seed it drew so that the run can be repeated', () => {
    const drawn = run(['run', '-m', completionModel, '--raw', '--max-tokens', '30', '--stats', 'Once upon a time']);
    expect(drawn.code).toBe(0);
    const seed = drawn.stderr.match(/temp 0\.8, top-k 40, top-p 0\.95, min-p 0\.05, seed (\d+)/)?.[1];
    expect(seed).toBeDefined();
    expect(run(['run', '-m', completionModel, '--raw', '--max-tokens', '30', '--seed', seed!, 'Once upon a time']).stdout).toBe(drawn.stdout);
  });

  it.each([
    ['--temp', '-1', /--temp must be a number from 0 \(greedy\) to 100/],
    ['--temp', 'hot', /--temp must be/],
    ['--top-k', '1.5', /--top-k must be an integer >= 0/],
    ['--top-p', '1.5', /--top-p must be a number from 0 to 1/],
    ['--min-p', '-0.1', /--min-p must be a number from 0/],
    ['--repeat-penalty', '0', /--repeat-penalty must be a number above 0/],
    ['--repeat-last-n', '-2', /--repeat-last-n must be an integer >= 0/],
    ['--presence-penalty', 'x', /--presence-penalty must be/],
    ['--frequency-penalty', '1e9', /--frequency-penalty must be/],
    ['--seed', '4294967296', /--seed must be an integer from 0 to 4294967295/],
    ['--seed', '', /--seed must be/],
  ])('%s %s: one line, exit 2', (flag, value, message) => {
    for (const command of ['run', 'bench']) {
      const { code, stdout, stderr } = run([command, '-m', fixtureModel, flag, value, ...(command === 'run' ? ['hi'] : [])]);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(message);
      expect(stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('cllm bench --temp', () => {
  const bench = (...extra: string[]) =>
    JSON.parse(run(['bench', '-m', fixtureModel, '--limit', '2', '--max-tokens', '24', '--repeat', '1', '--block', '4,8', '--json', '-', ...extra]).stdout);

  it('measures sampled decoding, checked against AR with the same seed, reproducibly', () => {
    const first = bench('--temp', '0.8', '--seed', '5');
    expect(first.settings.sampling).toMatchObject({ temperature: 0.8, seed: 5 });
    for (const s of first.summary) expect(s.identical).toBe(`${s.runs}/${s.runs}`);
    const jacobiSteps = (r: { results: { decoder: string; block: number; steps: number }[] }) => r.results.filter((x) => x.decoder === 'jacobi').map((x) => `${x.block}:${x.steps}`);
    expect(jacobiSteps(bench('--temp', '0.8', '--seed', '5'))).toEqual(jacobiSteps(first));
    expect(bench().settings.sampling).toMatchObject({ temperature: 0 }); // greedy unless asked
  });
});

describe('cllm errors', () => {
  it.each([
    ['a block size of 0', ['run', '-m', fixtureModel, '--block', '0', 'hi'], 2, /--block must be a whole number from 1 to \d+, not "0"/],
    ['an unknown decoder', ['run', '-m', fixtureModel, '--decoder', 'fast', 'hi'], 2, /fast/],
    ['an unknown option', ['run', '-m', fixtureModel, '--bogus', 'hi'], 2, /unknown option '--bogus'/],
    ['no model', ['run', 'hi'], 2, /no model given/],
    ['a block larger than the context', ['run', '-m', fixtureModel, '--ctx', '256', '-B', '300', 'hi'], 2, /a block of 300 tokens does not fit in the context of 256/],
    ['a missing model', ['run', '-m', '/nonexistent/model.gguf', 'hi'], 1, /model file not found: \/nonexistent\/model.gguf/],
    ['a file that is not a model', ['run', '-m', fileURLToPath(import.meta.url), 'hi'], 1, /not a GGUF model file/],
    ['a prompt longer than the context', ['run', '-m', fixtureModel, '--ctx', '256', 'the little girl played '.repeat(80)], 1, /more than the 256 available/],
    ['an --rpc without a port', ['run', '-m', fixtureModel, '--rpc', 'localhost', 'hi'], 2, /--rpc takes host:port\[,host:port\.\.\.\] \(a port from 1 to 65535\), not "localhost"/],
    ['an --rpc port out of range', ['info', '-m', fixtureModel, '--rpc', '127.0.0.1:70000'], 2, /not "127\.0\.0\.1:70000"/],
    ['an RPC server that is not there', ['run', '-m', fixtureModel, '--rpc', '127.0.0.1:1', 'hi'], 1, /cannot reach the RPC server 127\.0\.0\.1:1 \(ECONNREFUSED\): is ggml-rpc-server running there\?/],
  ])('%s: one line on stderr, no stack trace', (_, args, exitCode, message) => {
    const { code, stdout, stderr } = run(args as string[]);
    expect(code).toBe(exitCode);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^cllm: /);
  });

  it('warns about more threads than cores and more context than the model was trained on', () => {
    const threads = availableParallelism() + 1;
    const { code, stderr } = run(['run', '-m', fixtureModel, '--raw', '--threads', String(threads), '--ctx', '4096', '--max-tokens', '2', 'hi']);
    expect(code).toBe(0);
    expect(stderr).toMatch(new RegExp(`^cllm: warning: --threads ${threads} is more than the \\d+ cores here`, 'm'));
    expect(stderr).toMatch(/^cllm: warning: --ctx 4096 is more than the 2048 tokens the model was trained on/m);
  });

  it('cllm info prints metadata as JSON and as a table', () => {
    const json = JSON.parse(run(['info', '-m', fixtureModel, '--json']).stdout);
    expect(json).toMatchObject({ architecture: 'llama', name: 'cllm tiny random llama', quantization: 'F32', backend: 'cpu' });
    const table = run(['info', '-m', fixtureModel]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^architecture +llama$/m);
    expect(table.stdout).toMatch(/^chat template +yes/m);
    expect(table.stdout).toMatch(/^device 0 +CPU: .*, [\d.]+ GiB free of [\d.]+ GiB$/m);
    expect(table.stdout).toMatch(/^offloaded +0 of 3 layers \(the output layer counts as one\)$/m);
    expect(json).toMatchObject({ exactKernels: true, offloadedLayers: 0 });
    expect(json.devices[0]).toMatchObject({ name: 'CPU', gpu: false });
  });

  it('says once that --gpu-layers does nothing on a CPU build', () => {
    const { code, stderr } = run(['run', '-m', fixtureModel, '--raw', '--temp', '0', '--gpu-layers', '99', '--max-tokens', '2', 'hi']);
    expect(code).toBe(0);
    expect(stderr.match(/--gpu-layers has no effect: this cllm was built for the CPU \(reinstall with CLLM_GPU=cuda, or add --rpc\)/g)).toHaveLength(1);
  });

  it('--fast-kernels decodes with llama.cpp\'s settings, and --verify still compares with AR', () => {
    const { code, stdout } = run(['run', '-m', completionModel, '--raw', '--temp', '0', '--fast-kernels', '--decoder', 'jacobi', '--max-tokens', '16', '--verify', '--json', 'Once upon a time']);
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.tokens).toHaveLength(16);
    expect(result.verify).toHaveProperty('identical');
  });
});

// Tests that count a reply's tokens decode greedily: a sampled reply may end early at EOS.
describe('cllm run, interactive chat in a pseudo-terminal', () => {
  it('chats, stops a reply on Ctrl-C, and exits on /exit', async () => {
    // The random fixture never says EOS when decoded greedily; a 64-token block over 2048 positions makes a
    // reply long enough to interrupt.
    const t = terminal(['run', '-m', fixtureModel, '--temp', '0', '-B', '64', '--max-tokens', '100000', '--system', 'Be brief.']);
    await t.waitFor(/> $/);
    t.proc.write('hello\r');
    let mark = t.screen.length;
    await t.waitFor(/\S{20,}/, mark); // reply text streaming
    t.proc.write('\x03');
    await t.waitFor(/\(interrupted\)[\s\S]*> $/, mark);
    mark = t.screen.length;
    t.proc.write('/stats\r');
    await t.waitFor(/session: 1 reply, \d+ tokens/, mark);
    t.proc.write('/exit\r');
    expect(await t.exited).toBe(0);
  });

  it('takes a multi-line message between triple quotes', async () => {
    const t = terminal(['run', '-m', fixtureModel, '--temp', '0', '--max-tokens', '4']);
    await t.waitFor(/> $/);
    t.proc.write('"""first line\r');
    await t.waitFor(/\. $/);
    t.proc.write('second line"""\r');
    await t.waitFor(/second line"""\s+\S[^\n]*\n> $/);
    t.proc.write('/stats\r');
    await t.waitFor(/session: 1 reply, 4 tokens/); // one message, not two
    t.proc.write('/exit\r');
    expect(await t.exited).toBe(0);
  });

  it('keeps the conversation usable after a message too long for the context', async () => {
    const t = terminal(['run', '-m', fixtureModel, '--temp', '0', '--ctx', '256', '--max-tokens', '8']);
    await t.waitFor(/> $/);
    t.proc.write('the little girl played '.repeat(60) + '\r');
    let mark = t.screen.length;
    await t.waitFor(/cllm: the prompt needs \d+ tokens of context, more than the 256 available[\s\S]*> $/, mark);
    mark = t.screen.length;
    t.proc.write('hello\r');
    await t.waitFor(/hello\s+\S[^\n]*\n> $/, mark);
    t.proc.write('/stats\r');
    await t.waitFor(/session: 1 reply, 8 tokens/, mark);
    t.proc.write('/exit\r');
    expect(await t.exited).toBe(0);
  });

  it('exits on Ctrl-D', async () => {
    const t = terminal(['run', '-m', fixtureModel]);
    await t.waitFor(/> $/);
    t.proc.write('\x04');
    expect(await t.exited).toBe(0);
  });

  it.skipIf(!haveStories)('samples the same replies for the same seed, and shows the sampling settings', async () => {
    const reply = async () => {
      const t = terminal(['run', '-m', storiesModel, '--seed', '7', '--max-tokens', '24']);
      await t.waitFor(/sampling: temp 0\.8, top-k 40, top-p 0\.95, min-p 0\.05, seed 7/);
      await t.waitFor(/> $/);
      const mark = t.screen.length;
      t.proc.write('Once upon a time\r');
      await t.waitFor(/Once upon a time\s+\S[^\n]*\n> $/, mark);
      const text = t.screen.slice(mark);
      t.proc.write('/exit\r');
      expect(await t.exited).toBe(0);
      return text;
    };
    expect(await reply()).toBe(await reply());
  });

  it.skipIf(!haveStories)('falls back to plain completion for a model without a chat template', async () => {
    const t = terminal(['run', '-m', storiesModel, '--temp', '0', '--max-tokens', '30']);
    await t.waitFor(/has no chat template: plain completion/);
    await t.waitFor(/> $/);
    t.proc.write('Once upon a time\r');
    await t.waitFor(/there was a little[\s\S]*> $/);
    t.proc.write('/exit\r');
    expect(await t.exited).toBe(0);
  });
});

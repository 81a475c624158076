// cllm train and the PyTorch trainer: its Python unit tests, the GGUF round trip, an end-to-end run
// (collect, train, export, load and generate), and bad input. Skipped, saying so, where torch is missing.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fixtureModel, haveStories, storiesModel } from './support/models.js';
import { runCli, scratchDir } from './support/cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cllm = join(root, 'bin/cllm.js');
const python = process.env.CLLM_PYTHON || 'python3';
const haveTorch = spawnSync(python, ['-c', 'import torch, numpy, gguf, tokenizers']).status === 0;
if (!haveTorch) console.warn(`torch, numpy, gguf or tokenizers is missing for ${python}: the trainer's tests are skipped (pip install -r train/requirements.txt)`);
const pycoder = resolve(root, '../shared/models/pycoder-16m.gguf');
const tmp = scratchDir('cllm-train-');

const run = (args: string[], env: Record<string, string> = {}) => runCli(args, { env, timeout: 300_000 });

function tokensOf(model: string, prompt: string): number[] {
  const out = run(['run', '-m', model, '--raw', '--temp', '0', '--max-tokens', '48', '--json', '--threads', '1', prompt]);
  expect(out.code).toBe(0);
  return JSON.parse(out.stdout).tokens;
}

/** Reads a GGUF and writes it back through the trainer's own reader and writer, with unchanged weights. */
function roundTrip(model: string, out: string): void {
  const script = `import sys; sys.path.insert(0, ${JSON.stringify(join(root, 'train'))})
from gguf_io import load_model, write_model
model, reader = load_model(sys.argv[1]); write_model(model, reader, sys.argv[2])`;
  const result = spawnSync(python, ['-c', script, model, out], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
}

describe.skipIf(!haveTorch)('the trainer', () => {
  it("passes its Python unit tests (losses, data, packing)", () => {
    const result = spawnSync(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', join(root, 'train/tests')], { encoding: 'utf8', cwd: root });
    expect(result.stdout).toMatch(/\d+ passed/);
    expect(result.status).toBe(0);
  });

  const models = [fixtureModel, ...(haveStories ? [storiesModel] : []), ...(existsSync(pycoder) ? [pycoder] : [])];
  it.each(models)('writes %s back with unchanged weights, and cllm gives token-identical output', (model) => {
    const copy = join(tmp, 'copy.gguf');
    roundTrip(model, copy);
    const prompt = model === pycoder ? 'import os\n' : 'Once upon a time';
    expect(tokensOf(copy, prompt)).toEqual(tokensOf(model, prompt));
    const info = (m: string) => ({ ...JSON.parse(run(['info', '-m', m, '--json']).stdout), path: undefined, fileBytes: undefined });
    expect(info(copy)).toEqual(info(model));
  });

  it('collects, trains a few steps on CPU, exports a GGUF that cllm loads and runs', () => {
    const base = haveStories ? storiesModel : fixtureModel;
    const prompts = join(tmp, 'prompts.txt');
    writeFileSync(prompts, 'Once upon a time\nTom had a big red ball\nThe sun was shining and\n');
    const trajectories = join(tmp, 'e2e.jsonl');
    expect(run(['collect', '-m', base, '--prompts', prompts, '--block', '8', '--max-tokens', '32', '--threads', '1', '-o', trajectories]).code).toBe(0);
    const output = join(tmp, 'e2e-cllm.gguf');
    const trained = run(['train', '--base', base, '--data', trajectories, '-o', output, '--steps', '3', '--batch', '2', '--device', 'cpu', '--threads', '1']);
    expect(trained.stderr).toMatch(/step 3\/3 \| consistency [\d.]+ \| ar [\d.]+/);
    expect(trained.stderr).toContain(`wrote ${output}`);
    expect(trained.code).toBe(0);
    const info = JSON.parse(run(['info', '-m', output, '--json']).stdout);
    const baseInfo = JSON.parse(run(['info', '-m', base, '--json']).stdout);
    expect({ ...info, path: 0, fileBytes: 0 }).toEqual({ ...baseInfo, path: 0, fileBytes: 0 });
    const generated = JSON.parse(run(['run', '-m', output, '--raw', '--max-tokens', '24', '--json', '--verify', 'Once upon a time']).stdout);
    expect(generated.tokens.length).toBeGreaterThan(0);
    expect(generated.verify.identical).toBe(true);
    // A second round starts from the CLLM, anchored to the base.
    const second = run(['train', '--base', base, '--init', output, '--data', trajectories, '-o', join(tmp, 'e2e-round2.gguf'), '--steps', '1', '--batch', '2', '--noisy', '--device', 'cpu', '--threads', '1']);
    expect(second.stderr).toContain(`training ${output} on 3 prompts`);
    expect(second.code).toBe(0);
  });

  const tokenizer = pycoder.replace(/\.gguf$/, '.tokenizer.json');
  it.skipIf(!existsSync(tokenizer))("train/collect.py's fixed points are llama.cpp's greedy output, with or without trajectories", () => {
    const prompts = join(tmp, 'code.jsonl');
    writeFileSync(prompts, ['import os\n', 'def add(a, b):\n', 'class Point:\n    def __init__(self'].map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
    const ours = (extra: string[]) => {
      const out = join(tmp, `torch${extra.length}.jsonl`);
      const result = spawnSync(python, [join(root, 'train/collect.py'), '--base', pycoder, '--tokenizer', tokenizer, '--prompts', prompts, '--block', '8',
        '--max-tokens', '48', '--batch', '2', '--threads', '1', '-o', out, ...extra], { encoding: 'utf8' });
      expect(result.stderr).toMatch(/wrote .*: 3 prompts, \d+ blocks \(0 prompts dropped as repetitive, 0 blocks settled off the greedy output\)/);
      return readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    };
    const llama = join(tmp, 'llama.jsonl');
    expect(run(['collect', '-m', pycoder, '--prompts', prompts, '--block', '8', '--max-tokens', '48', '--threads', '1', '-o', llama]).code).toBe(0);
    const expected = readFileSync(llama, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    const blocks = (records: { data_id: string; prompt_ids: number[]; teacher_output_ids: number[] }[]) => records.map((r) => [r.data_id, r.prompt_ids, r.teacher_output_ids]);
    const trajectories = ours([]);
    expect(blocks(trajectories)).toEqual(blocks(expected));
    for (const r of trajectories) {
      const states: number[][] = r.answer_trajectory_ids;
      expect(states.at(-1)).toEqual(r.teacher_output_ids.slice(-8));
      expect(states.length).toBeGreaterThan(1);
      expect(states.length).toBeLessThanOrEqual(9);
    }
    const fixedPoints = ours(['--fixed-points-only']);
    expect(blocks(fixedPoints)).toEqual(blocks(expected));
    expect(fixedPoints.every((r) => r.answer_trajectory_ids.length === 1)).toBe(true);
  });

  it('takes the same steps in two processes under torchrun as in one', () => {
    const data = join(tmp, 'ddp.jsonl');
    const records = [0, 1, 2, 3].map((p) => ({ data_id: `data_${p}`, jacobian_itr_id: 'itr_0', prompt_ids_len: 3, prompt_ids: [1, 5 + p, 9], answer_trajectory_ids: [[7, 7, 7, 7], [20 + p, 7, 7, 7], [20 + p, 30, 31, 32]], teacher_output_ids: [1, 5 + p, 9, 20 + p, 30, 31, 32] }));
    writeFileSync(data, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const train = (launcher: string[], output: string) => {
      const result = spawnSync(python, [...launcher, join(root, 'train/train.py'), '--base', fixtureModel, '--data', data, '-o', output, '--steps', '3',
        '--batch', '4', '--states', '2', '--noisy', '--refresh', '--lr', '1e-3', '--device', 'cpu', '--threads', '1'], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
      expect(result.status, result.stderr).toBe(0);
      return [...result.stderr.matchAll(/consistency ([\d.]+) \| ar ([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    };
    const one = train([], join(tmp, 'one.gguf'));
    const two = train(['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2'], join(tmp, 'two.gguf'));
    expect(two).toHaveLength(2);
    for (const [i, [consistency, ar]] of one.entries()) {
      expect(two[i][0]).toBeCloseTo(consistency, 3);
      expect(two[i][1]).toBeCloseTo(ar, 3);
    }
    const compare = `import sys; sys.path.insert(0, ${JSON.stringify(join(root, 'train'))})
from gguf_io import load_model
a, b = (dict(load_model(p)[0].named_parameters()) for p in sys.argv[1:])
print(max(float((a[k] - b[k]).abs().max()) for k in a))`;
    const difference = spawnSync(python, ['-c', compare, join(tmp, 'one.gguf'), join(tmp, 'two.gguf')], { encoding: 'utf8' });
    expect(Number(difference.stdout)).toBeLessThan(1e-4);
  });

  describe('bad input: one line, exit 1, no output file', () => {
    const output = join(tmp, 'never.gguf');
    const good = join(tmp, 'good.jsonl');
    writeFileSync(good, JSON.stringify({ data_id: 'data_0', jacobian_itr_id: 'itr_0', prompt_ids_len: 2, prompt_ids: [1, 5], answer_trajectory_ids: [[7, 7], [8, 9]], teacher_output_ids: [1, 5, 8, 9] }) + '\n');
    const cases: [string, () => string[], RegExp][] = [
      ['a file that is not JSONL', () => { const f = join(tmp, 'notjsonl.jsonl'); writeFileSync(f, readFileSync(good, 'utf8') + 'hello\n'); return ['--base', fixtureModel, '--data', f]; }, /^cllm: .*notjsonl\.jsonl:2: not valid JSON/],
      ['a record without its fields', () => { const f = join(tmp, 'nofield.jsonl'); writeFileSync(f, '{"data_id": "data_0", "prompt_ids_len": 1, "prompt_ids": [1]}\n'); return ['--base', fixtureModel, '--data', f]; }, /^cllm: .*nofield\.jsonl:1: missing field answer_trajectory_ids/],
      ['trajectories of another model', () => { const f = join(tmp, 'other.jsonl'); writeFileSync(f, readFileSync(good, 'utf8').replace('[8, 9]', '[8, 4000]').replace('[8,9]', '[8,4000]')); return ['--base', fixtureModel, '--data', f]; }, /^cllm: .*other\.jsonl:1: token id 4000 is out of range for the base model's vocabulary of 496/],
      ['a base that is not a llama', () => ['--base', join(root, 'deps/llama.cpp/models/ggml-vocab-gpt-2.gguf'), '--data', good], /^cllm: the base model's architecture is 'gpt2'; cllm train handles llama models only$/],
      ['a base that is not GGUF', () => { const f = join(tmp, 'text.gguf'); writeFileSync(f, 'not a model'); return ['--base', f, '--data', good]; }, /^cllm: .*text\.gguf is not a valid GGUF file/],
    ];
    it.each(cases)('%s', (_, args, message) => {
      const result = run(['train', ...args(), '-o', output, '--steps', '1', '--threads', '1']);
      expect(result.stderr.trim()).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.code).toBe(1);
      expect(existsSync(output)).toBe(false);
      expect(readdirSync(tmp).filter((f) => f.includes('partial'))).toEqual([]);
    });

    it('a Python without torch, or none at all', () => {
      const none = run(['train', '--base', fixtureModel, '--data', good, '-o', output], { CLLM_PYTHON: 'no-such-python' });
      expect(none.stderr.trim()).toBe('cllm: cllm train needs Python 3, and no-such-python was not found: install it, or set CLLM_PYTHON to its path');
      expect(none.code).toBe(1);
    });

    it('Ctrl-C during training writes nothing and exits 130', async () => {
      // As a terminal does it: SIGINT to the whole process group, cllm and the trainer alike.
      const child = spawn(process.execPath, [cllm, 'train', '--base', fixtureModel, '--data', good, '-o', output, '--steps', '100000', '--threads', '1'], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      while (!stderr.includes('step 1/')) await new Promise((r) => setTimeout(r, 50));
      process.kill(-child.pid!, 'SIGINT');
      const code = await new Promise((resolve) => child.on('exit', resolve));
      expect(code).toBe(130);
      expect(stderr).toContain('cllm: interrupted: nothing was written');
      expect(existsSync(output)).toBe(false);
    });
  });
});

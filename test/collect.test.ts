// cllm collect: the trajectory loop against the fake model, then the command on real models: the record
// format, fixed points equal to greedy decoding, resume, Ctrl-C and bad input.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectPrompt, isRepetitive, type TrajectoryRecord } from '../src/tasks/collect.js';
import { EOS, FakeModel } from './support/fake-model.js';
import { fixtureModel, haveStories, storiesModel } from './support/models.js';
import { cllm, runCli, scratchDir } from './support/cli.js';

const tmp = scratchDir('cllm-collect-');

const run = (args: string[]) => runCli(args, { timeout: 120_000 });

function readRecords(file: string): TrajectoryRecord[] {
  return readFileSync(file, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line));
}

// The next token depends on the last two: guesses converge over a few iterations, as with a real model.
const lastTwo = (prefix: readonly number[]) => 1 + ((prefix[prefix.length - 1] * 31 + (prefix[prefix.length - 2] ?? 0) * 7) % 40);

describe('collectPrompt', () => {
  it('records every state from the random start to the fixed point, which is the greedy continuation', async () => {
    const model = new FakeModel(lastTwo);
    const prompt = [5, 9, 12, 3];
    const { records, iterations, divergence, stopReason } = await collectPrompt(model, prompt, 7, { block: 4, maxTokens: 10, seed: 1, verify: true });
    expect(records).toHaveLength(3); // ceil(10 / 4) blocks
    expect(stopReason).toBe('length');
    expect(divergence).toBeUndefined();
    const greedy = model.greedy(prompt, 12);
    expect(records[2].complete_teacher_output_ids).toEqual([...prompt, ...greedy]);
    let text = [...prompt];
    for (const [k, r] of records.entries()) {
      expect(r).toMatchObject({ data_id: 'data_7', jacobian_itr_id: `itr_${k}`, prompt_ids_len: 4, prompt_ids: text });
      const states = r.answer_trajectory_ids;
      // The start is drawn from the prompt; each next state is the argmax after the previous one.
      expect(states[0].every((t) => prompt.includes(t))).toBe(true);
      for (let i = 1; i < states.length; i++) {
        const fed = [...text, ...states[i - 1]];
        expect(states[i]).toEqual(states[i].map((_, j) => lastTwo(fed.slice(0, text.length + j))));
      }
      const fixedPoint = states[states.length - 1];
      expect(fixedPoint).toEqual(greedy.slice(k * 4, k * 4 + 4));
      expect(r.teacher_output_ids).toEqual([...text, ...fixedPoint]);
      text = [...text, ...fixedPoint];
    }
    expect(iterations).toBe(records.reduce((sum, r) => sum + r.answer_trajectory_ids.length, 0));
  });

  it('stops after the block that holds EOS, and converges in one pass when the start is already right', async () => {
    const model = new FakeModel((prefix) => (prefix.length >= 6 ? EOS : 8));
    const { records, stopReason } = await collectPrompt(model, [8, 8, 8], 0, { block: 4, maxTokens: 64, seed: 0, verify: true });
    expect(stopReason).toBe('eos');
    expect(records).toHaveLength(1);
    expect(records[0].answer_trajectory_ids.at(-1)).toEqual([8, 8, 8, EOS]);
    const constant = new FakeModel(() => 8);
    const { records: one } = await collectPrompt(constant, [8, 8], 0, { block: 3, maxTokens: 3, seed: 0, verify: false });
    expect(one[0].answer_trajectory_ids).toEqual([[8, 8, 8]]);
  });

  it('draws the same starts for a prompt whatever ran before it, so that a resumed run matches', async () => {
    const a = await collectPrompt(new FakeModel(lastTwo), [1, 2, 3, 4, 5], 3, { block: 4, maxTokens: 8, seed: 2, verify: false });
    const b = await collectPrompt(new FakeModel(lastTwo), [1, 2, 3, 4, 5], 3, { block: 4, maxTokens: 8, seed: 2, verify: false });
    expect(a.records).toEqual(b.records);
  });

  it('flags a teacher output with one token 10 times in a row, up to EOS', () => {
    const isEos = (t: number) => t === EOS;
    expect(isRepetitive([EOS, 1, ...Array(10).fill(4), 2], isEos)).toBe(true);
    expect(isRepetitive([EOS, 1, ...Array(9).fill(4), 2], isEos)).toBe(false);
    expect(isRepetitive([EOS, 1, EOS, ...Array(12).fill(4)], isEos)).toBe(false);
  });
});

const model = haveStories ? storiesModel : fixtureModel;
const prompts = join(tmp, 'prompts.jsonl');
writeFileSync(prompts, ['Once upon a time', 'Tom had a big red ball', 'The sun was shining and', 'Lily found a shiny stone'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
const collectArgs = (out: string, ...more: string[]) => ['collect', '-m', model, '--prompts', prompts, '--block', '8', '--max-tokens', '24', '--threads', '1', '-o', out, ...more];

describe('cllm collect', () => {
  const full = join(tmp, 'full.jsonl');

  it('writes one JSONL record per block whose fixed points equal greedy decoding', () => {
    const { code, stderr } = run(collectArgs(full));
    expect(code).toBe(0);
    expect(stderr).toMatch(/^4 prompts, \d+ tokens in/m);
    expect(stderr).toMatch(/\d+ blocks written to .*full\.jsonl, \d+ dropped as repetitive/);
    expect(stderr).toMatch(/\d+ states, [\d.]+ iterations per block of 8/);
    expect(stderr).toContain('every fixed point equals greedy decoding');
    const records = readRecords(full);
    expect(new Set(records.map((r) => r.data_id))).toEqual(new Set(['data_0', 'data_1', 'data_2', 'data_3']));
    for (const r of records) {
      expect(Object.keys(r).sort()).toEqual(['answer_trajectory_ids', 'complete_teacher_output_ids', 'data_id', 'jacobian_itr_id', 'prompt_ids', 'prompt_ids_len', 'teacher_output_ids']);
      expect(r.answer_trajectory_ids.every((s) => s.length === 8)).toBe(true);
    }
    // The whole output of prompt 1 is what `cllm run --decoder ar` writes, up to EOS.
    const ar = JSON.parse(run(['run', '-m', model, '--raw', '--temp', '0', '--decoder', 'ar', '--max-tokens', '24', '--json', '--threads', '1', 'Tom had a big red ball']).stdout);
    const last = records.filter((r) => r.data_id === 'data_1').at(-1)!;
    const generated = last.complete_teacher_output_ids.slice(last.prompt_ids_len);
    expect(generated.slice(0, ar.tokens.length)).toEqual(ar.tokens);
  });

  it('--resume skips the prompts already written, cuts a torn last line, and ends as an uninterrupted run', () => {
    const partial = join(tmp, 'partial.jsonl');
    expect(run(collectArgs(partial, '--limit', '2')).code).toBe(0);
    appendFileSync(partial, '{"data_id":"data_2","jacobian_itr');
    const refused = run(collectArgs(partial));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/partial\.jsonl exists: pass --resume/);
    const resumed = run(collectArgs(partial, '--resume'));
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/^2 prompts \(plus 2 from before\)/m);
    expect(readFileSync(partial, 'utf8')).toBe(readFileSync(full, 'utf8'));
  });

  it('leaves a valid file on Ctrl-C, exits 130, and --resume finishes it', async () => {
    const many = join(tmp, 'many-prompts.txt');
    writeFileSync(many, Array.from({ length: 200 }, (_, i) => `Once upon a time, number ${i}`).join('\n') + '\n');
    const out = join(tmp, 'interrupted.jsonl');
    const args = ['collect', '-m', model, '--prompts', many, '--block', '8', '--max-tokens', '64', '--threads', '1', '-o', out];
    const child = spawn(process.execPath, [cllm, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    while (!existsSync(out) || readFileSync(out, 'utf8').length === 0) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/^interrupted: \d+ prompts/m);
    const text = readFileSync(out, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const ids = new Set(readRecords(out).map((r) => r.data_id));
    expect(ids.size).toBeLessThan(200);
    const resumed = run([...args, '--resume', '--limit', String(ids.size + 2)]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/^\d+ prompts \(plus \d+ from before\)/m);
  });

  it('refuses bad input in one line', () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "ok"}\nnot json\n');
    const badPrompts = run(['collect', '-m', model, '--prompts', bad, '-o', join(tmp, 'never.jsonl')]);
    expect(badPrompts.code).toBe(1);
    expect(badPrompts.stderr.trim()).toMatch(/^cllm: bad\.jsonl:2: not valid JSON/);
    expect(existsSync(join(tmp, 'never.jsonl'))).toBe(false);
    const noOutput = run(['collect', '-m', model, '--prompts', prompts]);
    expect(noOutput.code).toBe(2);
    expect(noOutput.stderr.trim().split('\n')).toHaveLength(1);
    const other = join(tmp, 'other-block.jsonl');
    writeFileSync(other, readFileSync(full, 'utf8').split('\n')[0] + '\n');
    const wrongBlock = run(['collect', '-m', model, '--prompts', prompts, '--block', '4', '-o', other, '--resume']);
    expect(wrongBlock.stderr.trim()).toMatch(/other-block\.jsonl was collected with blocks of 8, not --block 4/);
  });
});

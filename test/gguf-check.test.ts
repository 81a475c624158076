// Damaged and hostile model files: each class of change that used to crash llama.cpp (abort, segfault) or hang
// now gives one line naming the key or tensor, exit code 1, in `cllm info` and `cllm run` alike.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkGguf } from '../src/model-files/gguf-check.js';
import { parseGguf, writeGguf, type Gguf } from './support/gguf-mutate.js';
import { fixtureModel, haveStories, havePycoder, pycoderModel, storiesModel } from './support/models.js';
import { runCli, scratchDir } from './support/cli.js';

const dir = scratchDir('cllm-gguf-');

const cli = (args: string[]) => runCli(args, { env: { NO_COLOR: '1' }, timeout: 30_000 });

let count = 0;
/** A copy of stories260K with one change, written to a file. */
function mutant(change: (g: Gguf) => void): string {
  const g = parseGguf(readFileSync(storiesModel));
  change(g);
  const path = join(dir, `mutant-${count++}.gguf`);
  writeFileSync(path, writeGguf(g));
  return path;
}

const tensor = (g: Gguf, name: string) => g.tensors.find((t) => t.name === name)!;
const setKey = (g: Gguf, key: string, type: number, value: number | string) => g.kv.set(key, { type, value });
const U32 = 4;
const F32 = 6;
const STRING = 8;

/** One line on stderr naming `what`, exit code 1, in both commands; never a signal. */
function expectRefused(path: string, what: RegExp) {
  for (const args of [['info', path], ['run', '-m', path, '--max-tokens', '2', 'Once']]) {
    const { code, signal, stderr } = cli(args);
    expect(signal, stderr).toBeNull();
    expect(code, stderr).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(what);
  }
}

describe.skipIf(!haveStories)('GGUF checks before llama.cpp', () => {
  it('accept the real models', () => {
    for (const path of [storiesModel, fixtureModel, ...(havePycoder ? [pycoderModel] : [])]) {
      expect(() => checkGguf(path, readFileSync(path).length)).not.toThrow();
    }
  });

  it.each([
    ['a norm as I32', 'blk.0.attn_norm.weight', 26],
    ['a norm as F16', 'output_norm.weight', 1],
    ['a norm as Q8_0', 'blk.1.ffn_norm.weight', 8],
    ['a matmul weight as I32', 'blk.0.attn_q.weight', 26],
    ['a matmul weight as F64', 'blk.0.ffn_gate.weight', 28],
    ['token_embd as I8', 'token_embd.weight', 24],
    ['an unknown type', 'blk.0.attn_k.weight', 99],
  ])('refuse %s', (_, name, type) => {
    expectRefused(mutant((g) => (tensor(g, name).type = type)), new RegExp(`tensor ${name.replace(/\./g, '\\.')}`));
  });

  it.each([0, 513, 2 ** 31 - 1])('refuse block_count %d', (n) => {
    expectRefused(mutant((g) => setKey(g, 'llama.block_count', U32, n)), /llama\.block_count .* from 1 to 512/);
  });

  it.each([NaN, -1e-5])('refuse rms_norm_eps %d', (eps) => {
    expectRefused(mutant((g) => setKey(g, 'llama.attention.layer_norm_rms_epsilon', F32, eps)), /layer_norm_rms_epsilon/);
  });

  it('refuse a duplicated vocabulary string', () => {
    const path = mutant((g) => {
      const tokens = (g.kv.get('tokenizer.ggml.tokens') as { items: string[] }).items;
      tokens[300] = tokens[299];
    });
    expectRefused(path, /tokenizer\.ggml\.tokens has the same text .* at tokens 299 and 300/);
  });

  it('refuse a special token id outside the vocabulary', () => {
    expectRefused(mutant((g) => setKey(g, 'tokenizer.ggml.eos_token_id', U32, 512)), /tokenizer\.ggml\.eos_token_id is 512, outside the vocabulary of 512 tokens/);
  });

  it('refuse alignments llama.cpp cannot map', () => {
    for (const alignment of [1, 16]) expectRefused(mutant((g) => setKey(g, 'general.alignment', U32, alignment)), /general\.alignment is \d+/);
  });

  it('refuse expert settings on a dense model, an unknown rope scaling and a tokenizer of another architecture', () => {
    expectRefused(mutant((g) => setKey(g, 'llama.expert_count', U32, 8)), /llama\.expert_count is 8, but the file has no expert tensors/);
    expectRefused(mutant((g) => setKey(g, 'llama.expert_used_count', U32, 2)), /llama\.expert_used_count 2 is more than/);
    expectRefused(mutant((g) => setKey(g, 'llama.rope.scaling.type', STRING, 'bogus')), /rope\.scaling\.type is "bogus"/);
    expectRefused(mutant((g) => setKey(g, 'tokenizer.ggml.model', STRING, 'bert')), /tokenizer\.ggml\.model "bert" does not belong with the llama architecture/);
  });

  it('refuse a truncated header and heads that do not divide the width', () => {
    const whole = readFileSync(storiesModel);
    const cut = join(dir, 'cut.gguf');
    writeFileSync(cut, whole.subarray(0, 2000));
    expectRefused(cut, /truncated or its header is damaged/);
    expectRefused(mutant((g) => setKey(g, 'llama.attention.head_count', U32, 7)), /head_count 7 does not divide/);
  });

  it('a damaged byte token is one line when a prompt needs it', () => {
    const path = mutant((g) => ((g.kv.get('tokenizer.ggml.tokens') as { items: string[] }).items[13] = '<0xZZ>'));
    const { code, stderr } = cli(['run', '-m', path, '-n', '2', 'Once\nupon']);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe("cllm: the text cannot be tokenized: the model's vocabulary lacks a token it needs (a byte token such as <0x0A> is missing or damaged)");
  });

  it('weights of NaN or infinity stop a run with one line and exit code 1, in every decoder, instead of printing nothing', () => {
    for (const value of [NaN, Infinity]) {
      const path = mutant((g) => g.data.writeFloatLE(value, Number(tensor(g, 'output_norm.weight').offset)));
      for (const decoder of [[], ['-B', '4'], ['--temp', '0.8', '--seed', '1']]) {
        const { code, stderr } = cli(['run', '-m', path, '-n', '4', ...decoder, 'Once upon a time']);
        expect(code, stderr).toBe(1);
        expect(stderr.trim()).toBe('cllm: the model computed logits that are not finite numbers (NaN or infinity) at position 4: its weights or settings are damaged');
      }
    }
  });

  it('refuse a FIFO as the model instead of waiting on it', () => {
    const fifo = join(dir, 'model.fifo');
    execFileSync('mkfifo', [fifo]);
    expectRefused(fifo, /not a regular file/);
  });
});

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CllmError } from '../src/engine/errors.js';
import { complete } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { Sequence } from '../src/engine/sequence.js';
import { fixtureModel, haveStories, storiesModel } from './support/models.js';
import { scratchDir } from './support/cli.js';

const scratch = scratchDir('cllm-test-');

/** Greedy decoding one token per pass; returns the generated tokens and the argmax at every position. */
async function greedyOneByOne(model: Model, prompt: string, count: number) {
  const context = model.createContext({ contextSize: 512, threads: 2 });
  const promptTokens = Array.from(model.tokenize(prompt));
  const all = [...promptTokens];
  const argmax: number[] = [];
  for (let i = 0; i < promptTokens.length; i++) argmax.push((await context.decode([promptTokens[i]], i)).chosen[0]);
  const generated: number[] = [];
  while (generated.length < count) {
    const next = argmax[argmax.length - 1];
    generated.push(next);
    all.push(next);
    argmax.push((await context.decode([next], all.length - 1)).chosen[0]);
  }
  context.dispose();
  return { promptTokens, all, argmax, generated };
}

describe('random-weight fixture', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(fixtureModel);
  });
  afterAll(() => model.dispose());

  it('reads its metadata', () => {
    expect(model.info).toMatchObject({
      architecture: 'llama',
      name: 'cllm tiny random llama',
      layers: 2,
      embeddingLength: 64,
      trainedContextLength: 2048,
      bos: 1,
      eos: 2,
      quantization: 'F32',
    });
    expect(model.info.vocabularySize).toBeGreaterThan(300);
    expect(model.info.parameterCount).toBeGreaterThan(100_000);
    expect(model.info.chatTemplate).toContain('<|im_start|>');
  });

  it('loads without mmap too, with progress reported up to 1', async () => {
    const progress: number[] = [];
    const copy = await Model.load(fixtureModel, { useMmap: false, onProgress: (f) => progress.push(f) });
    expect(copy.tokenize('hello')).toEqual(model.tokenize('hello'));
    copy.dispose();
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[progress.length - 1]).toBe(1);
  });

  it('round-trips text through the tokenizer', () => {
    for (const text of ['hello there', 'Once upon a time, the little girl played.', 'two plus two equals 4!']) {
      const tokens = model.tokenize(text);
      expect(tokens[0]).toBe(model.info.bos);
      expect(model.detokenize(tokens).trim()).toBe(text);
    }
  });

  it('applies its ChatML template and tokenizes the special tokens', () => {
    const prompt = model.applyChatTemplate([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hello' },
    ]);
    expect(prompt).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n');
    const tokens = Array.from(model.tokenize(prompt, { parseSpecial: true }));
    const imEnd = model.tokenize('<|im_end|>', { addBos: false, parseSpecial: true });
    expect(imEnd.length).toBe(1);
    expect(tokens).toContain(imEnd[0]);
    expect(model.isEndOfGeneration(imEnd[0])).toBe(true);
  });

  it('decodes a block with the same argmax as one position at a time', async () => {
    const { all, argmax } = await greedyOneByOne(model, 'the little girl', 40);
    const context = model.createContext({ contextSize: 512, threads: 2 });
    for (const block of [1, 3, 8, 16, 64]) {
      context.rollback(0);
      const got: number[] = [];
      for (let start = 0; start < all.length; start += block) {
        got.push(...(await context.decode(all.slice(start, start + block), start)).chosen);
      }
      expect(got, `block ${block}`).toEqual(argmax);
    }
    context.dispose();
  });
});

describe.skipIf(!haveStories)('stories260K', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(storiesModel);
  });
  afterAll(() => model.dispose());

  it('reads its metadata', () => {
    expect(model.info).toMatchObject({
      architecture: 'llama',
      vocabularySize: 512,
      trainedContextLength: 2048,
      layers: 5,
      embeddingLength: 64,
      parameterCount: 292_800,
      fileBytes: 1_185_376,
      bos: 1,
      eos: 2,
      quantization: 'F32',
      chatTemplate: null,
    });
    expect(model.hasChatTemplate).toBe(false);
  });

  it('round-trips text through the tokenizer', () => {
    for (const text of ['Once upon a time', 'Lily saw a big dog. She was happy!', 'café déjà vu 🙂 naïve']) {
      const tokens = model.tokenize(text);
      expect(tokens[0]).toBe(1);
      expect(model.detokenize(tokens)).toBe(' ' + text);
      expect(model.detokenize(model.tokenize(text, { addBos: false }))).toBe(text);
    }
  });

  it('streams UTF-8 characters split across byte tokens without breaking them', () => {
    const text = 'naïve 🙂 café';
    const tokens = model.tokenize(text, { addBos: false });
    expect(tokens.length).toBeGreaterThan(text.length / 2); // byte-fallback tokens, one per UTF-8 byte
    const stream = model.textStream();
    const parts = Array.from(tokens, (t) => stream.push(t));
    parts.push(stream.flush());
    expect(parts.join('')).toBe(' ' + text);
    expect(parts.join('')).not.toContain('\uFFFD');
    expect(parts.filter((p) => p === '').length).toBeGreaterThan(0); // partial characters were held back
  });

  it('knows its end-of-generation token', () => {
    expect(model.isEndOfGeneration(2)).toBe(true);
    expect(model.isEndOfGeneration(1)).toBe(false);
    expect(model.isEndOfGeneration(model.tokenize('time', { addBos: false })[0])).toBe(false);
  });

  it('writes a story greedily, one token at a time, from "Once upon a time"', async () => {
    const { generated } = await greedyOneByOne(model, 'Once upon a time', 60);
    const text = model.detokenize(generated);
    expect(text).toMatch(/^, there was a little (girl|boy) named \w+\./);
    expect(text.split(' ').length).toBeGreaterThan(30);
  });

  it('decodes blocks of 1 to 64 tokens with the same argmax as one position at a time', async () => {
    const { all, argmax } = await greedyOneByOne(model, 'Once upon a time, there was a dog', 120);
    const context = model.createContext({ contextSize: 512, threads: 2 });
    for (let block = 1; block <= 64; block++) {
      context.rollback(0);
      const got: number[] = [];
      for (let start = 0; start < all.length; start += block) {
        got.push(...(await context.decode(all.slice(start, start + block), start)).chosen);
      }
      expect(got, `block ${block}`).toEqual(argmax);
    }
    context.dispose();
  });

  it('splits a block larger than the batch size and returns every position', async () => {
    const { all, argmax } = await greedyOneByOne(model, 'Once upon a time', 60);
    const context = model.createContext({ contextSize: 512, batchSize: 16, threads: 2 });
    const result = await context.decode(all, 0, { margins: true });
    expect(Array.from(result.chosen)).toEqual(argmax);
    expect(result.margins!.length).toBe(all.length);
    expect(Math.min(...result.margins!)).toBeGreaterThanOrEqual(0);
    context.dispose();
  });

  it('rolls the KV cache back and re-decodes identically', async () => {
    const context = model.createContext({ contextSize: 256, threads: 2 });
    const prompt = Array.from(model.tokenize('Once upon a time, there was a cat'));
    const first = await context.decode(prompt, 0, { margins: true });
    expect(context.cachedTokens).toBe(prompt.length);
    // Score a wrong draft after the prompt, roll it back, then score the right continuation.
    const cut = 4;
    context.rollback(cut);
    expect(context.cachedTokens).toBe(cut);
    await context.decode([7, 8, 9, 10, 11], cut);
    context.rollback(cut);
    const again = await context.decode(prompt.slice(cut), cut, { margins: true });
    expect(Array.from(again.chosen)).toEqual(Array.from(first.chosen.slice(cut)));
    expect(Array.from(again.margins!)).toEqual(Array.from(first.margins!.slice(cut)));
    context.dispose();
  });

  // A rebuilt graph costs host time every pass, and on CUDA a new capture of its CUDA graph.
  it('reuses the compute graph across Jacobi steps and their roll-backs', async () => {
    const context = model.createContext({ contextSize: 512, threads: 2 });
    const sequence = new Sequence(context);
    const prompt = Array.from(model.tokenize('Once upon a time, there was a little'));
    for (const options of [{ decoder: 'ar' as const }, { decoder: 'jacobi' as const, block: 8 }, { decoder: 'jacobi' as const, block: 16 }]) {
      sequence.reset();
      const before = context.graphsReused;
      const { result } = await complete(sequence, prompt, { ...options, maxTokens: 64 });
      // Every pass after the prompt's but the first reuses the graph of the pass before.
      expect(context.graphsReused - before, `${options.decoder} ${'block' in options ? options.block : ''}`).toBe(result.steps - 1);
    }
    context.dispose();
  });

  it('refuses a block past the end of the context with a clear error', async () => {
    const context = model.createContext({ contextSize: 256, threads: 2 });
    await expect(context.decode(new Array(10).fill(5), 250)).rejects.toThrow(/context is full/);
    await expect(context.decode([100000], 0)).rejects.toThrow(/out of range/);
    context.dispose();
    await expect(context.decode([5], 0)).rejects.toThrow(/disposed/);
  });

  it('refuses a second decode while one is running', async () => {
    const context = model.createContext({ contextSize: 256, threads: 2 });
    const first = context.decode(new Array(64).fill(5), 0);
    await expect(context.decode([5], 64)).rejects.toThrow(/busy/);
    await first;
    context.dispose();
  });
});

describe('bad model files', () => {
  const source = haveStories ? storiesModel : fixtureModel;

  it.each([
    ['a missing file', () => join(scratch, 'missing.gguf'), /model file not found/],
    ['a directory', () => scratch, /is a directory/],
    ['a text file', () => writeText('notes.gguf', 'this is not a model\n'), /not a GGUF model file/],
    ['a GGUF header with garbage after it', () => writeText('garbage.gguf', 'GGUF' + 'x'.repeat(200)), /is not a usable model: unsupported GGUF version/],
    ['a truncated model', () => truncated(0.6), /could not load model .*: .+/],
    ['a model cut inside its header', () => truncated(0.01), /is not a usable model: the GGUF file is truncated/],
  ])('%s gives a one-line error and the process survives', async (_, makePath, pattern) => {
    const error = await Model.load(makePath()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CllmError);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message).not.toContain('\n');
    const model = await Model.load(source);
    const context = model.createContext({ contextSize: 64, threads: 2 });
    expect((await context.decode(model.tokenize('Once'), 0)).chosen.length).toBe(2);
    model.dispose();
  });

  function writeText(name: string, text: string): string {
    const path = join(scratch, name);
    writeFileSync(path, text);
    return path;
  }

  function truncated(fraction: number): string {
    const bytes = readFileSync(source);
    const path = join(scratch, `truncated-${fraction}.gguf`);
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length * fraction)));
    return path;
  }
});

describe('disposal', () => {
  it('loads and frees a model 100 times without leaking', async () => {
    const path = join(scratch, 'cycle.gguf');
    copyFileSync(haveStories ? storiesModel : fixtureModel, path);
    const cycle = async () => {
      const model = await Model.load(path);
      const context = model.createContext({ contextSize: 128, threads: 2 });
      await context.decode(model.tokenize('Once upon a time'), 0);
      model.dispose(); // disposes the context too
      expect(() => context.cachedTokens).toThrow(/disposed/);
      expect(() => model.tokenize('x')).toThrow(/disposed/);
    };
    for (let i = 0; i < 30; i++) await cycle();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 100; i++) await cycle();
    const grown = process.memoryUsage().rss - before;
    // One leaked model with its context would be over 1 MB; 100 of them, over 100 MB. Without a leak the
    // allocators' pools still move by up to about 25 MB between runs under vitest.
    expect(grown).toBeLessThan(40 * 1024 * 1024);
  });
});

// Ctrl-C inside llama.cpp, at the library's level: the flag the CLI's SIGINT handler sets (setInterrupted)
// stops a model load at its next progress report and a forward pass between the operations of its graph.
// Either ends as CllmError('interrupted', 130), and what was loaded or cached stays usable once cleared.
// A long prompt is evaluated in chunks, with a progress report after each and a rollback if one fails.
import { readFileSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../src/engine/addon.js';
import { CllmError } from '../src/engine/errors.js';
import { generate } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { Sequence } from '../src/engine/sequence.js';
import { FakeModel } from './support/fake-model.js';
import { haveStories, storiesModel } from './support/models.js';

function dataSegmentBytes(): number {
  return Number(/^VmData:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

async function rejection(promise: Promise<unknown>): Promise<CllmError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CllmError);
  return err as CllmError;
}

describe.skipIf(!haveStories || process.platform !== 'linux')('interrupting llama.cpp', () => {
  afterEach(() => native().setInterrupted(false));

  it('a model load stops with "interrupted" (exit code 130), frees what it loaded, and the next load works', async () => {
    native().setInterrupted(true);
    const err = await rejection(Model.load(storiesModel, { useMmap: false }));
    expect(err.message).toBe('interrupted');
    expect(err.exitCode).toBe(130);
    // Without mmap, the weights' buffer is allocated before the first progress report: 50 leaked ones would
    // add 50 model sizes to the data segment (RSS would not show buffers whose pages were never written).
    const data = dataSegmentBytes();
    for (let i = 0; i < 50; i++) await rejection(Model.load(storiesModel, { useMmap: false }));
    expect(dataSegmentBytes() - data).toBeLessThan(25 * statSync(storiesModel).size);
    native().setInterrupted(false);
    const model = await Model.load(storiesModel, { useMmap: false });
    expect(model.tokenize('Once').length).toBeGreaterThan(0);
    model.dispose();
  });

  it('a prefill stops with "interrupted", the cache rolls back to before it, and the sequence goes on', async () => {
    const model = await Model.load(storiesModel);
    const context = model.createContext({ contextSize: 512, batchSize: 64, threads: 1 });
    const sequence = new Sequence(context);
    await sequence.append(Array.from(model.tokenize('Once upon a time')));
    const before = { tokens: [...sequence.tokens], cached: sequence.cached };

    native().setInterrupted(true);
    const long = Array.from(model.tokenize(' there was a little girl who liked to play in the park with her dog.'.repeat(8), { addBos: false }));
    const err = await rejection(sequence.append(long));
    expect(err.message).toBe('interrupted');
    expect(err.exitCode).toBe(130);
    expect(sequence.tokens).toEqual(before.tokens);
    expect(sequence.cached).toBe(before.cached);
    expect(context.cachedTokens).toBe(before.cached);

    // Once cleared, the same sequence generates what a fresh one would.
    native().setInterrupted(false);
    const resumed = await generate(sequence, { decoder: 'ar', maxTokens: 8, sampling: { temperature: 0 } });
    const fresh = new Sequence(model.createContext({ contextSize: 512, threads: 1 }));
    await fresh.append(Array.from(model.tokenize('Once upon a time')));
    const expected = await generate(fresh, { decoder: 'ar', maxTokens: 8, sampling: { temperature: 0 } });
    expect(resumed.tokens).toEqual(expected.tokens);
    model.dispose();
  });

  // As the CLI's Ctrl-C does: the signal for the decoder's loop, the flag for a pass already in llama.cpp.
  it('generation stops with the "interrupted" stop reason, keeping the tokens it had', async () => {
    const model = await Model.load(storiesModel);
    const sequence = new Sequence(model.createContext({ contextSize: 512, threads: 1 }));
    await sequence.append(Array.from(model.tokenize('Once upon a time')));
    const streamed: number[] = [];
    const abort = new AbortController();
    const result = await generate(sequence, {
      decoder: 'jacobi',
      maxTokens: 400,
      sampling: { temperature: 0 },
      signal: abort.signal,
      onTokens: (tokens) => {
        streamed.push(...tokens);
        if (streamed.length < 10) return;
        abort.abort();
        native().setInterrupted(true);
      },
    });
    expect(result.stopReason).toBe('interrupted');
    expect(result.tokens.length).toBeGreaterThanOrEqual(10);
    expect(result.tokens.length).toBeLessThan(400);
    expect(result.tokens).toEqual(streamed);
    model.dispose();
  });
});

describe('a long prefill', () => {
  const prompt = Array.from({ length: 4200 }, (_, i) => 1 + (i % 50));

  it('reports its progress after each chunk and caches the whole prompt', async () => {
    const model = new FakeModel(() => 1, 8192);
    const sequence = new Sequence(model);
    const reports: [number, number][] = [];
    await sequence.append(prompt, (evaluated, total) => reports.push([evaluated, total]));
    expect(reports).toEqual([
      [2048, 4199],
      [4096, 4199],
      [4199, 4199],
    ]);
    expect(model.cache).toEqual(prompt.slice(0, -1));
    expect(sequence.tokens).toEqual(prompt);
  });

  it('interrupted after its first chunk, leaves the cache and the sequence as they were', async () => {
    const model = new FakeModel(() => 1, 8192);
    const sequence = new Sequence(model);
    await sequence.append([7, 8, 9]);
    const evaluateChunk = model.prefill.bind(model);
    let chunks = 0;
    model.prefill = async (tokens, start) => {
      if (++chunks === 2) throw new CllmError('interrupted', 130);
      await evaluateChunk(tokens, start);
    };
    const err = await rejection(sequence.append(prompt));
    expect(err.message).toBe('interrupted');
    expect(model.cache).toEqual([7, 8]);
    expect(sequence.tokens).toEqual([7, 8, 9]);
    expect(sequence.cached).toBe(2);
  });
});

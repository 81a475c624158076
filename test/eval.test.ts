// cllm eval: held-out loss over windows of the context, split by how much context each token was predicted from.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { documentLoss, type Scorer } from '../src/tasks/perplexity.js';
import { runCli, scratchDir } from './support/cli.js';
import { fixtureModel } from './support/models.js';

const scratch = scratchDir('cllm-eval-test-');

/** A scorer whose log-probability of a target is minus its position in the window, so that nats name positions. */
function positionScorer(size: number): Scorer & { windows: number[] } {
  const windows: number[] = [];
  return {
    size,
    windows,
    rollback: () => {},
    async logProbabilities(tokens, start, targets) {
      expect(start).toBe(0);
      expect(targets.length).toBe(tokens.length);
      windows.push(tokens.length);
      return Float32Array.from({ length: targets.length }, (_, i) => -(i + 1));
    },
  };
}

const sum = (from: number, to: number) => ((from + to) * (to - from + 1)) / 2;

describe('documentLoss', () => {
  it('splits the loss by the target position in its window, the buckets adding up to the total', async () => {
    const document = Array.from({ length: 300 }, (_, i) => i);
    const loss = await documentLoss(positionScorer(1024), document);
    expect(loss.tokens).toBe(299);
    expect(loss.buckets).toEqual([
      { from: 0, to: 64, tokens: 63, nats: sum(1, 63) },
      { from: 64, to: 256, tokens: 192, nats: sum(64, 255) },
      { from: 256, to: null, tokens: 44, nats: sum(256, 299) },
    ]);
    expect(loss.buckets.reduce((a, b) => a + b.nats, 0)).toBe(loss.nats);
    expect(loss.buckets.reduce((a, b) => a + b.tokens, 0)).toBe(loss.tokens);
  });

  it('starts each window of a long document at position 1 again', async () => {
    const scorer = positionScorer(128);
    const loss = await documentLoss(scorer, Array.from({ length: 300 }, (_, i) => i));
    expect(scorer.windows).toEqual([128, 128, 43]);
    expect(loss.buckets.map((b) => b.tokens)).toEqual([63 + 63 + 43, 65 + 65, 0]);
    expect(loss.nats).toBe(2 * sum(1, 128) + sum(1, 43));
  });
});

describe('cllm eval', () => {
  it('prints the loss by position, in the text and in --json', () => {
    const text = join(scratch, 'heldout.txt');
    writeFileSync(text, ['def add(a, b):\n    return a + b\n'.repeat(20), 'the cat sat on the mat. '.repeat(10)].join('\x1e'));
    const json = runCli(['eval', '-m', fixtureModel, '--text', text, '--json']);
    expect(json.code).toBe(0);
    const r = JSON.parse(json.stdout);
    expect(r.buckets.map((b: { from: number; to: number | null }) => [b.from, b.to])).toEqual([[0, 64], [64, 256], [256, null]]);
    expect(r.buckets.reduce((a: number, b: { tokens: number }) => a + b.tokens, 0)).toBe(r.tokens);
    const nats = r.buckets.reduce((a: number, b: { tokens: number; natsPerToken: number | null }) => a + b.tokens * (b.natsPerToken ?? 0), 0);
    expect(nats / r.tokens).toBeCloseTo(r.natsPerToken, 6);

    const plain = runCli(['eval', '-m', fixtureModel, '--text', text]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^by position: 0-64 [\d.]+ \| 64-256 ([\d.]+|-) \| 256\+ ([\d.]+|-)$/m);
  });
});

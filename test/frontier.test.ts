// bench/frontier.ts: the loss-speed plot of a model's variants, and its markdown table.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontierPoint, frontierSvg, frontierTable } from '../bench/frontier-plot.js';
import { scratchDir } from './support/cli.js';

const scratch = scratchDir('cllm-frontier-test-');
const bench = (tokensPerStep: number, tokensPerStepClean: number | null) => ({
  summary: [
    { decoder: 'ar', block: 1, tokensPerStep: 1, tokensPerStepClean: 1 },
    { decoder: 'jacobi', block: 16, tokensPerStep, tokensPerStepClean },
  ],
});

describe('bench/frontier.ts', () => {
  const base = frontierPoint('pycoder', { natsPerToken: 2 }, bench(1.5, 1.25));
  const cllm = frontierPoint('cllm<step200>', { natsPerToken: 2.1 }, bench(2.5, 2));

  it('plots each variant, with the limits the base sets', () => {
    const svg = frontierSvg([base, cllm], base);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).toMatch(/>pycoder<\/text>/);
    expect(svg).toMatch(/>cllm&#60;step200&#62;<\/text>/); // escaped
    expect(svg).toContain('held-out loss (nats/token)');
    expect(svg).toContain('tokens per step, non-degenerate outputs, block 16');
    expect(svg).toContain('>+6%</text>');
    expect(svg).toContain('>1.4x</text>');
    expect(svg.match(/<circle/g)).toHaveLength(2);
    expect(frontierSvg([base, cllm])).not.toContain('+6%');
  });

  it('tabulates the points against the base, on non-degenerate tokens per step', () => {
    const rows = frontierTable([base, cllm], base).trim().split('\n');
    expect(rows).toHaveLength(4);
    expect(rows[2]).toBe('| pycoder | 2.0000 | +0.0% | 1.50 | 1.25 | 1.00x |');
    expect(rows[3]).toBe('| cllm<step200> | 2.1000 | +5.0% | 2.50 | 2.00 | 1.60x |');
    const odd = frontierPoint('odd', { natsPerToken: 1.3000281539906875 }, bench(1.5, 1.25));
    expect(frontierTable([odd], odd)).toContain('| odd | 1.3000 | +0.0% |');
    // Every output looped: the raw figure stands in.
    expect(frontierTable([frontierPoint('loops', { natsPerToken: 1.9 }, bench(3, null)), base], base)).toContain('| loops | 1.9000 | -5.0% | 3.00 | - | 2.40x |');
  });

  it('writes the SVG and prints the table from files, and says in one line what is wrong with one', () => {
    const files = (name: string, e: object, b: object) => {
      writeFileSync(join(scratch, `${name}-eval.json`), JSON.stringify(e));
      writeFileSync(join(scratch, `${name}-bench.json`), JSON.stringify(b));
      return `${name}=${join(scratch, `${name}-eval.json`)},${join(scratch, `${name}-bench.json`)}`;
    };
    const out = join(scratch, 'frontier.svg');
    const script = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'bench/frontier.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
    const ok = script(['--out', out, '--base', 'base', files('base', { natsPerToken: 2 }, bench(1.5, 1.25)), files('cllm', { natsPerToken: 2.1 }, bench(2.5, 2))]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('| cllm | 2.1000 | +5.0% | 2.50 | 2.00 | 1.60x |');
    expect(readFileSync(out, 'utf8')).toContain('>cllm</text>');

    const noBlock16 = script(['--out', out, files('ar', { natsPerToken: 2 }, { summary: [{ decoder: 'ar', block: 1, tokensPerStep: 1 }] })]);
    expect(noBlock16.status).toBe(1);
    expect(noBlock16.stderr).toBe('ar: the bench file has no Jacobi block-16 row: run cllm bench --json with --decoders jacobi --block 16\n');
  });
});

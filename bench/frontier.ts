// The quality-speed frontier of a model's variants (a base and its CLLMs): held-out loss against tokens per
// step on outputs that do not loop, as an SVG scatter plot, and the same numbers as a markdown table.
// Usage: node --import tsx bench/frontier.ts --out FILE.svg [--base NAME] NAME=EVAL.json,BENCH.json ...
//   EVAL.json: `cllm eval --json` output; BENCH.json: `cllm bench --json` with --decoders jacobi --block 16.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { frontierPoint, frontierSvg, frontierTable } from './frontier-plot.js';

const USAGE = 'usage: node --import tsx bench/frontier.ts --out FILE.svg [--base NAME] NAME=EVAL.json,BENCH.json ...';

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`cannot read ${file}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${file} is not JSON`);
  }
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { out: { type: 'string' }, base: { type: 'string' } }, allowPositionals: true });
  if (!values.out || positionals.length === 0) throw new Error(USAGE);
  const points = positionals.map((arg) => {
    const m = /^([^=]+)=([^,]+),(.+)$/.exec(arg);
    if (!m) throw new Error(`"${arg}" is not NAME=EVAL.json,BENCH.json`);
    return frontierPoint(m[1], readJson(m[2]), readJson(m[3]));
  });
  const base = values.base === undefined ? undefined : points.find((p) => p.name === values.base);
  if (values.base !== undefined && !base) throw new Error(`--base ${values.base} names no point: use one of ${points.map((p) => p.name).join(', ')}`);
  writeFileSync(values.out, frontierSvg(points, base));
  process.stdout.write(frontierTable(points, base));
  process.stderr.write(`wrote ${values.out}\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}

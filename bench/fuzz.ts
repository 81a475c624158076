// Runs mutated copies of a model through `cllm info` and a short `cllm run`, two at a time, and counts how
// each ended: usage `node --import tsx bench/fuzz.ts [--count 2000] [--seed 1] [--model FILE]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mutate, readModel, tryMutant, writeMutant, type Outcome } from '../test/gguf-mutate.js';
import { storiesModel } from '../test/models.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '2000' }, seed: { type: 'string', default: '1' }, model: { type: 'string', default: storiesModel }, jobs: { type: 'string', default: '2' } } });
const count = Number(values.count);
const seed = Number(values.seed);
const original = readModel(values.model);
const dir = mkdtempSync(join(tmpdir(), 'cllm-fuzz-'));
const counts = new Map<Outcome, number>();
const bad: string[] = [];
let next = 0;
const t0 = Date.now();

async function worker(): Promise<void> {
  while (next < count) {
    const index = next++;
    const mutant = mutate(original, seed, index);
    const file = join(dir, `mutant-${index}.gguf`);
    writeMutant(file, mutant);
    const { outcome, stderr } = await tryMutant(file);
    counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    if (outcome !== 'ok' && outcome !== 'clean error') bad.push(`${index} ${outcome}: ${mutant.description}: ${stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
    rmSync(file);
  }
}

await Promise.all(Array.from({ length: Number(values.jobs) }, worker));
rmSync(dir, { recursive: true, force: true });
console.log(`${count} mutants of ${values.model} (seed ${seed}) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
for (const [outcome, n] of [...counts].sort()) console.log(`  ${outcome}: ${n}`);
for (const line of bad) console.log(line);
process.exitCode = bad.length ? 1 : 0;

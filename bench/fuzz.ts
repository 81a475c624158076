// Runs mutated copies of a model through `cllm info` and a short `cllm run`, two at a time, and counts how
// each ended: usage `node --import tsx bench/fuzz.ts [--count 2000] [--seed 1] [--model FILE] [--jobs 2]`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fuzz } from '../test/support/gguf-mutate.js';
import { storiesModel } from '../test/support/models.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '2000' }, seed: { type: 'string', default: '1' }, model: { type: 'string', default: storiesModel }, jobs: { type: 'string', default: '2' } } });
const t0 = Date.now();
const { outcomes, bad } = await fuzz(readFileSync(values.model), Number(values.seed), Number(values.count), Number(values.jobs));
console.log(`${values.count} mutants of ${values.model} (seed ${values.seed}) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
for (const [outcome, n] of Object.entries(outcomes).sort()) console.log(`  ${outcome}: ${n}`);
for (const line of bad) console.log(line);
process.exitCode = bad.length ? 1 : 0;

// Checks a trajectory file against llama.cpp: for a sample of its prompts, decodes the prompt greedily,
// one token a pass, and compares that output with the file's fixed points, token for token.
// Usage: node --import tsx bench/check-fixed-points.ts -m MODEL.gguf --data TRAJECTORIES.jsonl [--sample 30] [--threads 2]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { complete } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { Sequence } from '../src/engine/sequence.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', short: 'm' },
    data: { type: 'string' },
    sample: { type: 'string', default: '30' },
    threads: { type: 'string', default: '2' },
  },
});
if (!args.model || !args.data) throw new Error('usage: -m MODEL.gguf --data TRAJECTORIES.jsonl [--sample N]');

// Each prompt's whole output is its last block's teacher output: the prompt, then every fixed point.
const outputs = new Map<string, { promptLength: number; tokens: number[] }>();
for (const line of readFileSync(args.data, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const record = JSON.parse(line);
  outputs.set(record.data_id, { promptLength: record.prompt_ids_len, tokens: record.teacher_output_ids });
}
const ids = [...outputs.keys()];
const step = Math.max(1, Math.floor(ids.length / Number(args.sample)));
const sample = ids.filter((_, i) => i % step === 0).slice(0, Number(args.sample));

const model = await Model.load(args.model);
const sequence = new Sequence(model.createContext({ threads: Number(args.threads) }));
let identical = 0;
let tokens = 0;
for (const id of sample) {
  const { promptLength, tokens: expected } = outputs.get(id)!;
  const answer = expected.slice(promptLength);
  sequence.reset();
  const { result } = await complete(sequence, expected.slice(0, promptLength), { decoder: 'ar', maxTokens: answer.length });
  // Greedy decoding stops at EOS, where a block runs past it: compare through the first EOS.
  const eos = answer.findIndex((t) => model.isEndOfGeneration(t));
  const compared = eos >= 0 ? eos + 1 : answer.length;
  const first = answer.slice(0, compared).findIndex((t, i) => t !== result.tokens[i]);
  if (first < 0) identical++;
  else console.log(`${id}: differs from greedy decoding at output token ${first} of ${compared}`);
  tokens += compared;
}
model.dispose();
console.log(`${identical} of ${sample.length} sampled prompts (${tokens} tokens) have exactly llama.cpp's greedy output as their fixed points`);

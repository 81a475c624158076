// How much of a fine-tuned model's greedy output is the base model's: on every prompt, both decode
// greedily, and the script counts the positions where their tokens agree and the common prefix.
// Usage: node --import tsx bench/greedy-agreement.ts --base BASE.gguf --model CLLM.gguf --prompts FILE.jsonl
//          [--max-tokens 128] [--limit N] [--threads 2] [--json FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { complete } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { parsePromptFile } from '../src/tasks/prompt-sets.js';
import { Sequence } from '../src/engine/sequence.js';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    model: { type: 'string', short: 'm' },
    prompts: { type: 'string' },
    'max-tokens': { type: 'string', default: '128' },
    limit: { type: 'string' },
    threads: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});
if (!args.base || !args.model || !args.prompts) throw new Error('usage: --base BASE.gguf --model CLLM.gguf --prompts FILE');
const maxTokens = Number(args['max-tokens']);
const prompts = parsePromptFile(readFileSync(args.prompts, 'utf8'), basename(args.prompts))
  .slice(0, args.limit ? Number(args.limit) : undefined)
  .map((p) => ('prompt' in p ? p.prompt : p.messages.map((m) => m.content).join('\n')));

async function greedyOutputs(path: string): Promise<number[][]> {
  const model = await Model.load(path);
  try {
    const sequence = new Sequence(model.createContext({ threads: Number(args.threads) }));
    const outputs: number[][] = [];
    for (const prompt of prompts) {
      sequence.reset();
      const { result } = await complete(sequence, Array.from(model.tokenize(prompt)), { block: 1, maxTokens });
      outputs.push(result.tokens);
    }
    return outputs;
  } finally {
    model.dispose();
  }
}

const base = await greedyOutputs(args.base);
const tuned = await greedyOutputs(args.model);
let same = 0;
let total = 0;
let prefix = 0;
const perPrompt = base.map((b, i) => {
  const t = tuned[i];
  const length = Math.max(b.length, t.length);
  let agree = 0;
  for (let j = 0; j < length; j++) if (b[j] === t[j]) agree++;
  let common = 0;
  while (common < length && b[common] === t[common]) common++;
  same += agree;
  total += length;
  prefix += common;
  return { prompt: i, tokens: length, agree, commonPrefix: common };
});
const summary = { base: args.base, model: args.model, prompts: prompts.length, maxTokens, agreement: same / total, meanCommonPrefix: prefix / prompts.length };
console.log(`${(100 * summary.agreement).toFixed(1)}% of greedy tokens agree position by position; mean common prefix ${summary.meanCommonPrefix.toFixed(1)} of ${maxTokens} tokens (${prompts.length} prompts)`);
if (args.json) writeFileSync(args.json, JSON.stringify({ ...summary, perPrompt }, null, 2) + '\n');

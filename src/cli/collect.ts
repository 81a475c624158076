// cllm collect: Jacobi trajectories of a base model on a prompt file, as JSONL, for `cllm train`.
import chalk from 'chalk';
import { Command } from 'commander';
import { closeSync, existsSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import type { Model } from '../engine/model.js';
import { collectPrompt, CollectInterrupted, isRepetitive, type TrajectoryRecord } from '../tasks/collect.js';
import { checkOutputPath, readPromptFile } from './files.js';
import { withModel } from './load-model.js';
import { integer, modelOptions, positiveInteger, type ModelFlags } from './options.js';
import { promptTokens } from './prompt-tokens.js';
import { withProgress } from './terminal.js';

interface CollectFlags extends ModelFlags {
  prompts: string;
  output: string;
  block: number;
  maxTokens: number;
  limit?: number;
  resume?: boolean;
  seed: number;
  verify: boolean;
}

export function collectCommand(): Command {
  return modelOptions(new Command('collect').description('write Jacobi trajectories of a model on a prompt file (JSONL), the training data of `cllm train`'))
    .requiredOption('--prompts <file>', 'prompts: JSONL ({"prompt": ...} a line) or plain text (one a line)')
    .requiredOption('-o, --output <file>', 'trajectory file to write (JSONL, one block a line)')
    .option('-B, --block <n>', 'tokens in a Jacobi block', positiveInteger('--block'), 16)
    .option('-n, --max-tokens <n>', 'tokens to generate per prompt (rounded up to whole blocks)', positiveInteger('--max-tokens'), 256)
    .option('--limit <n>', 'use only the first n prompts', positiveInteger('--limit'))
    .option('--resume', 'continue an interrupted run: keep the prompts already in the output file')
    .option('--seed <n>', 'seed of the random start of each block', integer('--seed'), 0)
    .option('--no-verify', 'skip the check of every fixed point against greedy autoregressive decoding')
    .action(async (flags: CollectFlags) => {
      const prompts = readPrompts(flags.prompts).slice(0, flags.limit);
      checkOutputPath(flags.output);
      const done = flags.resume ? resumePoint(flags.output, flags.block) : refuseOverwrite(flags.output);
      await withModel(flags, { block: flags.block }, (model, context) => collect(model, context, prompts, done, flags));
    });
}

function readPrompts(file: string): string[] {
  return readPromptFile(file).map((p, i) => {
    if ('prompt' in p) return p.prompt;
    throw new CllmError(`${file}: prompt ${i + 1} is a chat; collect takes plain prompts ({"prompt": "..."})`);
  });
}

function refuseOverwrite(output: string): Set<number> {
  if (existsSync(output)) throw new CllmError(`${output} exists: pass --resume to continue it, or remove it to start over`);
  return new Set();
}

/**
 * The prompts an interrupted run already wrote. Records are written a whole prompt at a time, so only a
 * last line cut by a crash can be incomplete; it is cut off.
 */
function resumePoint(output: string, block: number): Set<number> {
  const done = new Set<number>();
  if (!existsSync(output)) return done;
  const text = readFileSync(output, 'utf8');
  let validBytes = 0;
  // Every complete line ends in a newline; whatever follows the last one is a cut line.
  const lines = text.split('\n').slice(0, -1);
  for (const [i, line] of lines.entries()) {
    let record: Partial<TrajectoryRecord>;
    try {
      record = JSON.parse(line);
    } catch {
      throw new CllmError(`${output}:${i + 1}: not valid JSON, so it cannot be resumed`);
    }
    const id = /^data_(\d+)$/.exec(String(record.data_id));
    if (!id || !Array.isArray(record.answer_trajectory_ids)) throw new CllmError(`${output}:${i + 1}: not a trajectory record`);
    if (record.answer_trajectory_ids[0]?.length !== block) {
      throw new CllmError(`${output} was collected with blocks of ${record.answer_trajectory_ids[0]?.length}, not --block ${block}`);
    }
    done.add(Number(id[1]));
    validBytes += Buffer.byteLength(line) + 1;
  }
  if (validBytes < Buffer.byteLength(text)) truncateSync(output, validBytes);
  return done;
}

async function collect(model: Model, context: Context, prompts: string[], done: Set<number>, flags: CollectFlags): Promise<void> {
  const todo = prompts.map((text, id) => ({ text, id })).filter((p) => !done.has(p.id));
  const totals = { prompts: 0, blocks: 0, dropped: 0, states: 0, tokens: 0, tooLong: 0 };
  const diverged: string[] = [];
  const t0 = performance.now();
  const out = openSync(flags.output, 'a');
  let interrupted = false;
  try {
    await withProgress('collect {bar} {value}/{total} prompts | {blocks} blocks | {eta_formatted} left', todo.length, async (signal, bar) => {
      for (const { text, id } of todo) {
        const tokens = promptTokens(model, [{ role: 'user', content: text }], { raw: true });
        if (tokens.length + flags.block > context.size) {
          totals.tooLong++;
          bar?.increment();
          continue;
        }
        let result;
        try {
          result = await collectPrompt(context, tokens, id, { block: flags.block, maxTokens: flags.maxTokens, seed: flags.seed, verify: flags.verify, signal });
        } catch (err) {
          if (!(err instanceof CollectInterrupted)) throw err;
          interrupted = true;
          return;
        }
        const kept = result.records.filter((r) => !isRepetitive(r.teacher_output_ids, (t) => model.isEndOfGeneration(t)));
        // One write per prompt: an interrupted run leaves whole prompts, which --resume recognises.
        if (kept.length) writeSync(out, kept.map((r) => JSON.stringify(r)).join('\n') + '\n');
        totals.prompts++;
        totals.blocks += kept.length;
        totals.dropped += result.records.length - kept.length;
        totals.states += result.iterations;
        totals.tokens += result.records.length * flags.block;
        if (result.divergence !== undefined) diverged.push(`data_${id} at token ${result.divergence}`);
        bar?.increment({ blocks: totals.blocks });
      }
    }, { blocks: 0 });
  } finally {
    closeSync(out);
  }
  const seconds = (performance.now() - t0) / 1000;
  const blocksDone = totals.blocks + totals.dropped;
  const lines = [
    `${interrupted ? chalk.yellow('interrupted: ') : ''}${totals.prompts} prompts${done.size ? ` (plus ${done.size} from before)` : ''}, ${totals.tokens} tokens in ${seconds.toFixed(1)} s`,
    `${totals.blocks} blocks written to ${flags.output}, ${totals.dropped} dropped as repetitive (one token 10 times in a row)`,
    `${totals.states} states, ${blocksDone ? (totals.states / blocksDone).toFixed(2) : '-'} iterations per block of ${flags.block}`,
    !flags.verify
      ? 'fixed points not verified (--no-verify)'
      : diverged.length
        ? // On the CPU a block's logits equal one token's; GPU kernels for a block round differently, which flips near-ties.
          chalk.yellow(`${diverged.length === 1 ? '1 prompt differs' : `${diverged.length} prompts differ`} from greedy decoding (a near-tie rounded differently in a block): ${diverged.slice(0, 5).join(', ')}${diverged.length > 5 ? ', ...' : ''}`)
        : 'every fixed point equals greedy decoding',
  ];
  if (totals.tooLong) lines.push(chalk.yellow(`${totals.tooLong} prompts skipped: longer than the context (raise --ctx)`));
  process.stderr.write(lines.join('\n') + '\n');
  if (interrupted) process.exitCode = 130;
}

// cllm bench: auto and Jacobi against autoregressive decoding on one model and machine, side by side.
import chalk from 'chalk';
import { Command, InvalidArgumentError, Option } from 'commander';
import { availableParallelism, cpus } from 'node:os';
import { native } from '../engine/addon.js';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import type { DecoderName } from '../engine/generate.js';
import type { Model } from '../engine/model.js';
import { describeSampling, type SamplingOptions } from '../engine/sampling.js';
import { Sequence } from '../engine/sequence.js';
import { runBench, runsPerPrompt, summarize, type BenchSummaryRow, type BenchVariant } from '../tasks/bench.js';
import { CHAT_PROMPTS, STORY_OPENERS, type BenchPrompt } from '../tasks/prompt-sets.js';
import { checkOutputPath, readPromptFile, writeFileAtomically } from './files.js';
import { originShares } from './format.js';
import { withModel } from './load-model.js';
import { FAST_KERNELS_HELP, modelOptions, positiveInteger, samplingFrom, samplingOptions, type ModelFlags, type SamplingFlags } from './options.js';
import { promptTokens } from './prompt-tokens.js';
import { benchReport, type BenchResult } from './bench-report.js';
import { withProgress } from './terminal.js';

interface BenchFlags extends SamplingFlags, ModelFlags {
  prompts?: string;
  set?: 'stories' | 'chat';
  decoders: DecoderName[];
  block: number[];
  maxTokens: number;
  repeat: number;
  limit?: number;
  fastKernels?: boolean;
  json?: string;
  report?: string;
}

/** A comma-separated list, each item parsed as the flag's single values are (no spaces). */
function list<T>(parse: (item: string) => T) {
  return (value: string): T[] => value.split(',').map(parse);
}

function decoderName(item: string): DecoderName {
  if (item !== 'ar' && item !== 'auto' && item !== 'jacobi') throw new InvalidArgumentError(`unknown decoder "${item}": use ar, auto and/or jacobi.`);
  return item;
}

export function benchCommand(): Command {
  return samplingOptions(modelOptions(new Command('bench').description('measure auto and Jacobi against autoregressive decoding: tokens per step, tok/s, speedup, exactness')), 0)
    .option('--prompts <file>', 'prompts: JSONL ({"prompt": ...} or {"messages": [...]} a line) or plain text (one a line)')
    .addOption(new Option('--set <name>', 'built-in prompt set (default: chat for models with a chat template, else stories)').choices(['stories', 'chat']))
    .addOption(new Option('--decoders <list>', 'decoders to compare').argParser(list(decoderName)).default(['ar', 'auto', 'jacobi'], 'ar,auto,jacobi'))
    .addOption(new Option('-B, --block <list>', 'Jacobi block sizes').argParser(list(positiveInteger('--block'))).default([4, 8, 16, 32], '4,8,16,32'))
    .option('-n, --max-tokens <n>', 'tokens to generate per run', positiveInteger('--max-tokens'), 128)
    .option('--repeat <n>', 'timed runs per prompt and variant, after one warm-up', positiveInteger('--repeat'), 3)
    .option('--limit <n>', 'use only the first n prompts', positiveInteger('--limit'))
    .option('--fast-kernels', FAST_KERNELS_HELP)
    .option('--json <file>', 'write the results as JSON to a file, or - for stdout')
    .option('--report <file>', 'write a self-contained HTML report with charts')
    .action(async (flags: BenchFlags) => {
      const prompts = promptSet(flags);
      // A bench can run for an hour: find an unwritable output before, not after.
      for (const file of [flags.report, flags.json === '-' ? undefined : flags.json]) if (file) checkOutputPath(file);
      const largestBlock = flags.decoders.includes('jacobi') ? Math.max(...flags.block) : 1;
      await withModel(flags, { exact: !flags.fastKernels, block: largestBlock, rollsBack: flags.decoders.some((d) => d !== 'ar') }, (model, context) => bench(model, context, prompts, flags));
    });
}

function promptSet(flags: BenchFlags): { name: string; prompts: BenchPrompt[] } | { builtIn: true } {
  return flags.prompts ? { name: flags.prompts, prompts: readPromptFile(flags.prompts) } : { builtIn: true };
}

async function bench(model: Model, context: Context, source: ReturnType<typeof promptSet>, flags: BenchFlags): Promise<void> {
  const set = 'builtIn' in source ? (flags.set ?? (model.hasChatTemplate ? 'chat' : 'stories')) : source.name;
  const all = 'builtIn' in source ? (set === 'chat' ? CHAT_PROMPTS : STORY_OPENERS).map((prompt) => ({ prompt })) : source.prompts;
  const prompts = all.slice(0, flags.limit ?? all.length);
  const variants: BenchVariant[] = [
    ...(flags.decoders.includes('ar') ? [{ decoder: 'ar' as const, block: 1 }] : []),
    ...(flags.decoders.includes('auto') ? [{ decoder: 'auto' as const, block: 0 }] : []),
    ...(flags.decoders.includes('jacobi') ? [...new Set(flags.block)].map((block) => ({ decoder: 'jacobi' as const, block })) : []),
  ];
  const tokens = prompts.map((p) => promptTokens(model, 'messages' in p ? p.messages : [{ role: 'user', content: p.prompt }]));
  const tooLong = tokens.findIndex((t) => t.length + flags.maxTokens > context.size);
  if (tooLong >= 0) {
    throw new CllmError(`prompt ${tooLong + 1} (${tokens[tooLong].length} tokens) plus --max-tokens ${flags.maxTokens} exceeds the context of ${context.size}: raise --ctx`);
  }
  const runs = prompts.length * runsPerPrompt({ variants, repeat: flags.repeat });
  const run = await withProgress('bench {bar} {value}/{total} runs | {eta_formatted} left', runs, (signal, bar) =>
    runBench(new Sequence(context), tokens, { variants, maxTokens: flags.maxTokens, repeat: flags.repeat, sampling: samplingFrom(flags), signal, onRun: () => bar?.increment() }),
  );

  const { summary, bestBlock } = summarize(run.rows, variants);
  const build = native().buildInfo();
  const result: BenchResult = {
    schema: 'cllm-bench/1',
    date: new Date().toISOString(),
    command: ['cllm', ...process.argv.slice(2)].join(' '),
    interrupted: run.interrupted,
    model: model.info,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: availableParallelism(),
      backend: build.backend,
      gpu: build.devices.find((d) => d.gpu)?.description ?? null,
    },
    llamaCppCommit: build.llamaCppCommit,
    settings: {
      prompts: set,
      promptCount: prompts.length,
      decoders: flags.decoders,
      blocks: variants.filter((v) => v.decoder === 'jacobi').map((v) => v.block),
      maxTokens: flags.maxTokens,
      repeat: flags.repeat,
      threads: context.settings.threads,
      contextSize: context.size,
      sampling: samplingFrom(flags),
      exactKernels: build.exactKernels && !flags.fastKernels,
    },
    results: run.rows,
    summary,
    bestBlock,
    trajectory: run.trajectory && {
      ...run.trajectory,
      steps: run.trajectory.steps.map((s) => ({ ...s, fedText: s.fed.map((t) => model.tokenText(t)), predictedText: s.predicted.map((t) => model.tokenText(t)) })),
    },
  };

  if (flags.json === '-') process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else printSummary(summary, bestBlock, result.settings, run.interrupted);
  for (const [file, text] of [
    [flags.json === '-' ? undefined : flags.json, () => JSON.stringify(result, null, 2) + '\n'],
    [flags.report, () => benchReport(result)],
  ] as const) {
    if (!file) continue;
    writeFileAtomically(file, text());
    process.stderr.write(chalk.dim(`wrote ${file}\n`));
  }
  if (run.interrupted) process.exitCode = 130;
}

function printSummary(summary: BenchSummaryRow[], bestBlock: number | null, settings: { promptCount: number; maxTokens: number; repeat: number; threads: number; sampling: SamplingOptions; exactKernels: boolean }, interrupted: boolean): void {
  const out = process.stdout;
  if (interrupted) out.write(chalk.yellow('interrupted: the summary covers the runs that finished\n'));
  if (summary.length === 0) {
    out.write('no run finished\n');
    return;
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  out.write(chalk.dim(`${plural(settings.promptCount, 'prompt')} x ${plural(settings.repeat, 'repeat')}, ${settings.maxTokens} tokens each, ${plural(settings.threads, 'thread')}; ${describeSampling(settings.sampling)}${settings.exactKernels ? '' : '; fast kernels'}\n`));
  const header = ['decoder', 'block', 'tokens/step', 'tok/step (clean)', 'degenerate', 'tok/s (median)', 'speedup vs AR (min-max)', 'identical', 'host'];
  const rows = summary.map((s) => [
    s.decoder,
    s.decoder === 'auto' ? '-' : String(s.block),
    s.tokensPerStep.toFixed(2),
    s.tokensPerStepClean === null ? '-' : s.tokensPerStepClean.toFixed(2),
    `${s.degenerateRuns}/${s.runs}`,
    s.tokensPerSecond.toFixed(1),
    s.speedupVsAr === null ? '-' : `${s.speedupVsAr.toFixed(2)}x (${s.speedupMin!.toFixed(2)}-${s.speedupMax!.toFixed(2)})`,
    s.identical,
    `${(100 * s.hostShare).toFixed(1)}%`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  out.write(chalk.bold(line(header)) + '\n');
  for (const [i, r] of rows.entries()) {
    const s = summary[i];
    const text = line(r);
    out.write((s.decoder === 'jacobi' && s.block === bestBlock ? chalk.green(text) : text) + '\n');
  }
  const auto = summary.find((s) => s.decoder === 'auto');
  if (auto) out.write(`auto: ${auto.scoredPerStep.toFixed(2)} tokens scored per pass; output by origin: ${originShares(auto.sources, 1)}\n`);
  const best = summary.find((s) => s.decoder === 'jacobi' && s.block === bestBlock);
  if (best) out.write(`best Jacobi block on this machine: ${chalk.green(String(bestBlock))}\n`);
  if (best?.speedupVsAr != null && best.speedupVsAr < 1) {
    out.write(chalk.yellow(`autoregressive decoding is faster here: the best Jacobi block runs at ${best.speedupVsAr.toFixed(2)}x\n`));
  }
}


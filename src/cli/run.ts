// cllm run: a one-shot prompt (argument or stdin) streamed to stdout, or an interactive chat on a TTY.
import chalk from 'chalk';
import { Command, Option } from 'commander';
import { basename } from 'node:path';
import { text as readAll } from 'node:stream/consumers';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import { complete, firstDivergence } from '../engine/generate.js';
import type { ChatMessage, Model } from '../engine/model.js';
import { LLAMA_CPP_SAMPLING } from '../engine/sampling.js';
import { Sequence } from '../engine/sequence.js';
import { chat } from './chat.js';
import { blockSize, generateOptions, statsLine, stopNotice, type RunFlags } from './generation.js';
import { withModel } from './load-model.js';
import { aliasOption, FAST_KERNELS_HELP, modelOptions, positiveInteger, samplingFrom, samplingOptions } from './options.js';
import { promptTokens, useTemplate } from './prompt-tokens.js';
import { interruptible, outputClosed, progressBar, warn } from './terminal.js';
import { trajectoryView } from './trajectory-view.js';

export function runCommand(): Command {
  const command = samplingOptions(
    modelOptions(
      new Command('run')
        .description('generate text: a one-shot prompt, a prompt piped on stdin, or an interactive chat')
        .argument('[prompt...]', 'the prompt; "-" or a pipe reads it from stdin; none on a terminal opens a chat'),
    ),
    LLAMA_CPP_SAMPLING.temperature,
  )
    .addOption(new Option('--decoder <name>', 'auto: free drafts where they pay, by measured cost; jacobi: a fixed block; ar: one token per pass').choices(['auto', 'jacobi', 'ar']).default('auto'))
    .option('-p, --prompt <text>', 'the prompt (instead of the words after the options)')
    .option('-B, --block <n>', 'Jacobi block size: tokens scored per forward pass (implies --decoder jacobi)', positiveInteger('--block'), 16)
    .option('-n, --max-tokens <n>', 'stop after this many generated tokens (llama-cli: --n-predict)', positiveInteger('--max-tokens'), 512)
    .option('--system <text>', 'system message for chat models')
    .option('--raw', "don't apply the chat template: plain completion")
    .option('--verify', 'also decode autoregressively, with the same sampling, and report whether the output is identical')
    .option('--stats', 'print generation statistics to stderr, even when it is not a terminal')
    .option('--json', 'print one JSON object with the text, tokens, stop reason and statistics')
    .option('--show-trajectory', 'show the draft block converging at every step')
    .option('--fast-kernels', FAST_KERNELS_HELP);
  aliasOption(command, '--n-predict <n>', 'maxTokens', positiveInteger('--n-predict'));
  return command.action(async (promptWords: string[], flags: RunFlags, command: Command) => {
      // A block size asks for Jacobi decoding, unless --decoder says otherwise.
      if (command.getOptionValueSource('block') === 'cli' && command.getOptionValueSource('decoder') === 'default') flags.decoder = 'jacobi';
      if (flags.prompt !== undefined) {
        if (promptWords.length) throw new CllmError('give the prompt once: with -p/--prompt or as words, not both', 2);
        promptWords = [flags.prompt];
      }
      const interactive = promptWords.length === 0 && process.stdin.isTTY;
      if (interactive && flags.json) throw new CllmError('--json needs a prompt (an argument or stdin)', 2);
      const prompt = interactive ? undefined : await oneShotPrompt(promptWords);
      await withModel(flags, { exact: !flags.fastKernels, block: blockSize(flags), rollsBack: flags.decoder !== 'ar' }, async (model, context) => {
        if (flags.system !== undefined && !useTemplate(model, flags)) warn(`--system is ignored: ${flags.raw ? '--raw skips the chat template' : `${basename(model.info.path)} has no chat template`}`);
        if (prompt === undefined) await chat(model, context, flags);
        else await oneShot(model, context, prompt, flags);
      });
    });
}

/** Prompts longer than this get a progress bar while they are evaluated. */
const LONG_PROMPT_TOKENS = 4096;

/** The prompt of a one-shot run: its words, or stdin ("-" or none); an empty one is a usage error. */
async function oneShotPrompt(promptWords: string[]): Promise<string> {
  const fromStdin = promptWords.length === 0 || (promptWords.length === 1 && promptWords[0] === '-');
  if (fromStdin && process.stdin.isTTY) process.stderr.write(chalk.dim('reading the prompt from stdin; end it with Ctrl-D\n'));
  const prompt = (fromStdin ? await readAll(process.stdin) : promptWords.join(' ')).replace(/\n$/, '');
  if (prompt.trim() === '') throw new CllmError(`the prompt is empty${fromStdin ? ' (nothing came on stdin)' : ''}: give some text to continue`, 2);
  return prompt;
}

/** Decodes the same prompt autoregressively, with the same sampling, and compares. */
async function verify(sequence: Sequence, prompt: number[], flags: RunFlags, output: readonly number[]) {
  sequence.reset();
  const { result: reference } = await complete(sequence, prompt, { decoder: 'ar', maxTokens: flags.maxTokens, margins: true, sampling: samplingFrom(flags) });
  const divergence = firstDivergence(reference, output);
  return { identical: !divergence, comparedTokens: reference.tokens.length, ...(divergence ? { firstDivergence: divergence } : {}) };
}

async function oneShot(model: Model, context: Context, prompt: string, flags: RunFlags): Promise<void> {
  if (!model.hasChatTemplate && !flags.raw && !flags.json && process.stderr.isTTY) {
    process.stderr.write(chalk.dim(`${model.info.path} has no chat template: plain completion\n`));
  }
  const messages: ChatMessage[] = [...(flags.system ? [{ role: 'system', content: flags.system }] : []), { role: 'user', content: prompt }];
  const tokens = promptTokens(model, messages, flags);
  const sequence = new Sequence(context);
  const stream = model.textStream();
  const trajectory = flags.showTrajectory ? trajectoryView(model, process.stderr) : undefined;
  // With a trajectory the text is printed once at the end, so that the two never interleave.
  const streamText = !flags.json && !trajectory;
  const interrupt = interruptible();
  // Long prompts take seconds to evaluate: a bar on an interactive stderr says how far it has got.
  const prefillBar = tokens.length > LONG_PROMPT_TOKENS ? progressBar('prompt {bar} {value}/{total} tokens') : undefined;
  prefillBar?.start(tokens.length - 1, 0);
  let text = '';
  let outcome;
  try {
    outcome = await complete(
      sequence,
      tokens,
      generateOptions(flags, {
        signal: interrupt.signal,
        onPrefill: prefillBar && ((evaluated, total) => (evaluated < total ? prefillBar.update(evaluated) : prefillBar.stop())),
        onStep: trajectory?.step,
        onTokens: (generated) => {
          const piece = generated.map((t) => stream.push(t)).join('');
          text += piece;
          if (streamText) process.stdout.write(piece);
        },
      }),
    );
  } finally {
    prefillBar?.stop();
    interrupt.release();
  }
  const rest = stream.flush();
  text += rest;
  const { result, stats } = outcome;
  // An interrupted output is a prefix of the autoregressive one; there is nothing complete to verify.
  const verification = flags.verify && result.stopReason !== 'interrupted' ? await verify(sequence, tokens, flags, result.tokens) : undefined;

  if (outputClosed.signal.aborted) return;
  if (flags.json) {
    const json = { text, tokens: result.tokens, stopReason: result.stopReason, stats, ...(verification ? { verify: verification } : {}) };
    process.stdout.write(JSON.stringify(json) + '\n');
  } else {
    process.stdout.write(streamText ? rest : text);
    if (process.stdout.isTTY || text.length > 0) process.stdout.write('\n');
    const notice = stopNotice(result, context);
    if (notice) process.stderr.write(chalk.yellow(`cllm: ${notice}\n`));
    if (flags.stats || process.stderr.isTTY) process.stderr.write(chalk.dim(statsLine(stats)) + '\n');
    if (verification) process.stderr.write(verifyLine(verification) + '\n');
  }
  if (result.stopReason === 'interrupted') process.exitCode = 130;
}

function verifyLine(v: Awaited<ReturnType<typeof verify>>): string {
  if (v.identical) return chalk.green(`verify: identical to autoregressive decoding (${v.comparedTokens} tokens)`);
  const d = v.firstDivergence!;
  return chalk.red(`verify: differs from autoregressive decoding at token ${d.index} (got ${d.got}, autoregressive ${d.expected}, which led the runner-up by ${d.margin?.toExponential(2)})`);
}

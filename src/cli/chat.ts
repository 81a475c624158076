// The interactive chat of `cllm run`: multi-turn through the model's chat template, keeping the KV cache
// between turns. Ctrl-C stops the current reply; Ctrl-D or /exit leaves.
import chalk from 'chalk';
import { createInterface } from 'node:readline';
import { basename } from 'node:path';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import { generate, generationStats, type GenerationStats } from '../engine/generate.js';
import type { ChatMessage, Model } from '../engine/model.js';
import { describeSampling } from '../engine/sampling.js';
import { Sequence } from '../engine/sequence.js';
import { samplingFrom } from './shared.js';
import { blockSize, generateOptions, statsLine, stopNotice, useTemplate, withoutDoubleBos, type RunFlags } from './run.js';

export async function chat(model: Model, context: Context, flags: RunFlags): Promise<void> {
  const out = process.stdout;
  const system: ChatMessage[] = flags.system ? [{ role: 'system', content: flags.system }] : [];
  const templateError = useTemplate(model, flags) ? chatTemplateError(model, system) : undefined;
  const templated = useTemplate(model, flags) && !templateError;
  const sequence = new Sequence(context);
  let history: ChatMessage[] = [...system];
  // The template text the sequence holds, so that a new turn only evaluates what it adds.
  let heldText = '';
  let lastStats: GenerationStats | undefined;
  const totals = { replies: 0, tokens: 0, steps: 0, decodeMs: 0 };
  let abort: AbortController | undefined;

  if (!templated) {
    const why = templateError ?? (model.hasChatTemplate ? '--raw' : `${basename(model.info.path)} has no chat template`);
    out.write(chalk.yellow(`${why}: plain completion, each line starts a new text.\n`));
  }
  out.write(chalk.dim(`sampling: ${describeSampling(samplingFrom(flags))}\n`));
  const help = () => out.write(chalk.dim('/help, /exit, /reset (a new conversation), /stats; """ starts and ends a multi-line message; Ctrl-C stops a reply, Ctrl-D exits.\n'));
  help();
  const oneShotOnly = [flags.verify && '--verify', flags.showTrajectory && '--show-trajectory'].filter(Boolean);
  if (oneShotOnly.length) out.write(chalk.yellow(`${oneShotOnly.join(' and ')} ${oneShotOnly.length === 1 ? 'applies' : 'apply'} to one-shot prompts only: ignored in chat.\n`));

  const rl = createInterface({ input: process.stdin, output: out, terminal: true, historySize: 200 });
  rl.setPrompt(chalk.green('> '));
  rl.on('SIGINT', () => {
    if (abort) {
      abort.abort();
    } else {
      // As in a shell, Ctrl-C at the prompt drops what was typed.
      rl.write(null, { ctrl: true, name: 'u' });
      out.write(chalk.dim('\n(Ctrl-D or /exit to quit)\n'));
      rl.prompt();
    }
  });
  rl.on('close', () => out.write('\n'));

  const reset = () => {
    sequence.reset();
    history = [...system];
    heldText = '';
  };

  const commands: Record<string, () => void> = {
    '/help': help,
    '/reset': () => {
      reset();
      out.write(chalk.dim('(conversation reset)\n'));
    },
    '/stats': () => {
      if (lastStats) out.write(chalk.dim(`last reply: ${statsLine(lastStats)}\n`));
      const perStep = totals.steps ? (totals.tokens / totals.steps).toFixed(2) : '0';
      const perSecond = totals.decodeMs ? ((totals.tokens * 1000) / totals.decodeMs).toFixed(1) : '0';
      const replies = `${totals.replies} ${totals.replies === 1 ? 'reply' : 'replies'}`;
      out.write(chalk.dim(`session: ${replies}, ${totals.tokens} tokens, ${perStep} tokens/step, ${perSecond} tok/s, ${sequence.position}/${context.size} context positions used\n`));
    },
  };

  const turn = async (input: string) => {
    // A turn that fails before its prompt is in the cache leaves the conversation as it was.
    const before = { history: [...history], heldText };
    let tokens: number[];
    let prefillMs: number;
    let reply = '';
    const stream = model.textStream();
    const held = model.textStream({ renderSpecial: true });
    abort = new AbortController();
    try {
      if (templated) {
        const full = model.applyChatTemplate([...history, { role: 'user', content: input }]);
        if (heldText && full.startsWith(heldText)) {
          tokens = Array.from(model.tokenize(full.slice(heldText.length), { addBos: false, parseSpecial: true }));
        } else {
          sequence.reset();
          tokens = withoutDoubleBos(model, model.tokenize(full, { parseSpecial: true }));
        }
        prefillMs = await sequence.append(tokens);
        history.push({ role: 'user', content: input });
        heldText = full;
      } else {
        sequence.reset();
        tokens = Array.from(model.tokenize(input));
        prefillMs = await sequence.append(tokens);
      }
    } catch (err) {
      history = before.history;
      heldText = before.heldText;
      abort = undefined;
      throw err;
    }

    try {
      const result = await generate(
        sequence,
        generateOptions(flags, {
          signal: abort.signal,
          onTokens: (generated) => {
            const piece = generated.map((t) => stream.push(t)).join('');
            reply += piece;
            heldText += generated.map((t) => held.push(t)).join('');
            out.write(piece);
          },
        }),
      );
      const stats = generationStats(result, { decoder: flags.decoder, block: blockSize(flags), promptTokens: tokens.length, prefillMs });
      reply += stream.flush();
      out.write('\n');
      const notice = stopNotice(result, context);
      if (notice) out.write(chalk.yellow(`(${notice})\n`));
      if (flags.stats) out.write(chalk.dim(statsLine(stats)) + '\n');
      lastStats = stats;
      totals.replies++;
      totals.tokens += stats.generatedTokens;
      totals.steps += stats.steps;
      totals.decodeMs += stats.decodeMs;
    } finally {
      abort = undefined;
      if (templated) history.push({ role: 'assistant', content: reply });
    }
  };

  rl.prompt();
  try {
    // Text between lines that start and end with """ is one message, as in ollama.
    let multiline: string[] | undefined;
    for await (const line of rl) {
      if (multiline) {
        const end = line.trimEnd().endsWith('"""');
        multiline.push(end ? line.trimEnd().slice(0, -3) : line);
        if (!end) {
          rl.setPrompt(chalk.green('. '));
          rl.prompt();
          continue;
        }
      } else if (line.trimStart().startsWith('"""')) {
        const first = line.trimStart().slice(3);
        if (!(first.trimEnd().endsWith('"""') && first.trim().length >= 3)) {
          multiline = [first];
          rl.setPrompt(chalk.green('. '));
          rl.prompt();
          continue;
        }
        multiline = [first.trimEnd().slice(0, -3)];
      }
      const input = (multiline ? multiline.join('\n') : line).trim();
      multiline = undefined;
      rl.setPrompt(chalk.green('> '));
      if (input === '/exit') break;
      if (commands[input]) {
        commands[input]();
      } else if (input.startsWith('/')) {
        out.write(chalk.yellow(`unknown command ${input}: /help, /exit, /reset, /stats\n`));
      } else if (input) {
        try {
          await turn(input);
        } catch (err) {
          if (!(err instanceof CllmError)) throw err;
          out.write(chalk.red(`cllm: ${err.message}\n`) + chalk.dim('(/reset starts a new conversation)\n'));
        }
      }
      rl.prompt();
    }
  } finally {
    // Restores the terminal's cooked mode and lets the process exit, whatever ended the loop.
    rl.close();
  }
}

/** A template that fails (or breaks its limits) on a first message leaves the chat in plain completion. */
function chatTemplateError(model: Model, system: ChatMessage[]): string | undefined {
  try {
    model.applyChatTemplate([...system, { role: 'user', content: 'hello' }]);
    return undefined;
  } catch (err) {
    if (!(err instanceof CllmError)) throw err;
    return err.message;
  }
}

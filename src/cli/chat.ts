// The interactive chat of `cllm run`: a read loop over a ChatSession, which keeps the KV cache between
// turns. Ctrl-C stops the current reply; Ctrl-D or /exit leaves.
import chalk from 'chalk';
import { createInterface, type Interface } from 'node:readline';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import type { Model } from '../engine/model.js';
import { describeSampling } from '../engine/sampling.js';
import { ChatSession } from './chat-session.js';
import { statsLine, stopNotice, type RunFlags } from './generation.js';
import { samplingFrom } from './options.js';

const HELP = '/help, /exit, /reset (a new conversation), /stats; """ starts and ends a multi-line message; Ctrl-C stops a reply, Ctrl-D exits.';

export async function chat(model: Model, context: Context, flags: RunFlags): Promise<void> {
  const out = process.stdout;
  const dim = (text: string) => out.write(text.split('\n').map((line) => chalk.dim(line) + '\n').join(''));
  const session = new ChatSession(model, context, flags);
  if (session.plainBecause) out.write(chalk.yellow(`${session.plainBecause}: plain completion, each line starts a new text.\n`));
  dim(`sampling: ${describeSampling(samplingFrom(flags))}`);
  dim(HELP);
  const oneShotOnly = [flags.verify && '--verify', flags.showTrajectory && '--show-trajectory'].filter(Boolean);
  if (oneShotOnly.length) out.write(chalk.yellow(`${oneShotOnly.join(' and ')} ${oneShotOnly.length === 1 ? 'applies' : 'apply'} to one-shot prompts only: ignored in chat.\n`));

  const commands: Record<string, () => void> = {
    '/help': () => dim(HELP),
    '/reset': () => {
      session.reset();
      dim('(conversation reset)');
    },
    '/stats': () => dim(session.stats()),
  };

  let replying: AbortController | undefined;
  const rl = createInterface({ input: process.stdin, output: out, terminal: true, historySize: 200 });
  rl.on('SIGINT', () => {
    if (replying) return replying.abort();
    // As in a shell, Ctrl-C at the prompt drops what was typed.
    rl.write(null, { ctrl: true, name: 'u' });
    out.write(chalk.dim('\n(Ctrl-D or /exit to quit)\n'));
    rl.prompt();
  });
  rl.on('close', () => out.write('\n'));

  try {
    for await (const input of messages(rl)) {
      if (input === '/exit') break;
      if (commands[input]) {
        commands[input]();
      } else if (input.startsWith('/')) {
        out.write(chalk.yellow(`unknown command ${input}: /help, /exit, /reset, /stats\n`));
      } else if (input) {
        replying = new AbortController();
        try {
          const { result, stats } = await session.reply(input, replying.signal, (text) => out.write(text));
          out.write('\n');
          const notice = stopNotice(result, context);
          if (notice) out.write(chalk.yellow(`(${notice})\n`));
          if (flags.stats) dim(statsLine(stats));
        } catch (err) {
          if (!(err instanceof CllmError)) throw err;
          out.write(chalk.red(`cllm: ${err.message}\n`) + chalk.dim('(/reset starts a new conversation)\n'));
        } finally {
          replying = undefined;
        }
      }
    }
  } finally {
    // Restores the terminal's cooked mode and lets the process exit, whatever ended the loop.
    rl.close();
  }
}

/** The user's messages, trimmed: a line, or the lines between two """, as in ollama. Prompts for each line. */
async function* messages(rl: Interface): AsyncGenerator<string> {
  rl.setPrompt(chalk.green('> '));
  rl.prompt();
  let multiline: string[] | undefined;
  for await (const line of rl) {
    if (multiline) {
      const end = line.trimEnd().endsWith('"""');
      multiline.push(end ? line.trimEnd().slice(0, -3) : line);
      if (!end) {
        rl.prompt();
        continue;
      }
    } else if (line.trimStart().startsWith('"""')) {
      const first = line.trimStart().slice(3);
      const endsOnTheSameLine = first.trimEnd().endsWith('"""') && first.trim().length >= 3;
      multiline = [endsOnTheSameLine ? first.trimEnd().slice(0, -3) : first];
      if (!endsOnTheSameLine) {
        rl.setPrompt(chalk.green('. '));
        rl.prompt();
        continue;
      }
    }
    const input = (multiline ? multiline.join('\n') : line).trim();
    multiline = undefined;
    rl.setPrompt(chalk.green('> '));
    yield input;
    rl.prompt();
  }
}

// Chat templates are Jinja programs that come inside model files, so a downloaded model can carry one that
// never ends, eats memory or recurses until the stack overflows. cllm renders them in a process of its own
// (build/bin/cllm-chat-template), which sets limits on itself; a template that breaks one is an error here.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CllmError } from './errors.js';

/** Real templates render in milliseconds. */
export const TEMPLATE_TIME_LIMIT_MS = 1000;
export const TEMPLATE_MEMORY_LIMIT_MB = 256;

const renderer = fileURLToPath(new URL('../../build/bin/cllm-chat-template', import.meta.url));

/** The prompt that the chat template of the model at `modelPath` makes of `messages`. */
export function renderChatTemplate(modelPath: string, messages: { role: string; content: string }[], addAssistant: boolean): string {
  const result = spawnSync(renderer, [modelPath], {
    input: JSON.stringify({ messages, addAssistant }),
    timeout: TEMPLATE_TIME_LIMIT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 256 << 20,
    env: { ...process.env, CLLM_TEMPLATE_MEMORY_MB: String(TEMPLATE_MEMORY_LIMIT_MB) },
  });
  const failed = (why: string) => new CllmError(`the chat template could not be applied: ${why}`);
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') throw failed(`${renderer} is missing: run \`npm run build:native\``);
  if (result.error && (result.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw failed(result.error.message);
  if (result.error || result.signal === 'SIGKILL' || result.signal === 'SIGXCPU') throw failed(`it ran past its time limit (${TEMPLATE_TIME_LIMIT_MS / 1000} s)`);
  if (result.signal) throw failed(`it crashed the renderer (${result.signal}): it nests too deeply`);
  if (result.status === 3) throw failed(`it ran past its memory limit (${TEMPLATE_MEMORY_LIMIT_MB} MB)`);
  if (result.status !== 0) throw failed(renderError(result.stdout.toString('utf8'), result.stderr.toString('utf8')) ?? `the renderer exited with code ${result.status}`);
  return result.stdout.toString('utf8');
}

/** llama.cpp's Jinja errors span several lines (the source, a caret) and may only be logged: the line that says what is wrong. */
function renderError(stdout: string, log: string): string | undefined {
  const jinja = /(Parser Error: .*|Jinja Exception: .*)/.exec(stdout + '\n' + log);
  return jinja?.[1].trim() ?? stdout.trim().split('\n')[0];
}

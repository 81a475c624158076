// Chat templates come inside model files, so they are rendered in a process of their own under limits: a
// template that loops, doubles a string, recurses or nests deeply is one line of error in a second or two,
// and the chat falls back to plain completion.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pty from 'node-pty';
import { describe, expect, it } from 'vitest';
import { renderChatTemplate } from '../src/engine/chat-template.js';
import { HOSTILE_TEMPLATES, parseGguf, writeGguf } from './support/gguf-mutate.js';
import { haveStories, storiesModel } from './support/models.js';
import { cllm, runCli, scratchDir } from './support/cli.js';

const dir = scratchDir('cllm-template-');

function withTemplate(name: string, template: string): string {
  const g = parseGguf(readFileSync(storiesModel));
  g.kv.set('tokenizer.chat_template', { type: 8, value: template });
  const path = join(dir, `${name}.gguf`);
  writeFileSync(path, writeGguf(g));
  return path;
}

const LLAMA3 =
  "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";
const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there ' },
];

describe.skipIf(!haveStories)('chat templates under limits', () => {
  it('render ordinary templates as llama.cpp does', () => {
    // No template in the file: llama.cpp's ChatML.
    expect(renderChatTemplate(storiesModel, messages, true)).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there <|im_end|>\n<|im_start|>assistant\n');
    // The tokenizer adds BOS itself (add_bos), so llama.cpp leaves the template's bos_token out.
    expect(renderChatTemplate(withTemplate('llama3', LLAMA3), messages, false)).toBe(
      '<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>',
    );
  });

  it.each([
    ['a recursive macro', HOSTILE_TEMPLATES[0], /nests too deeply|could not be applied/],
    ['100,000 nested parentheses', HOSTILE_TEMPLATES[1], /nests too deeply/],
    ['a loop of a billion steps', HOSTILE_TEMPLATES[2], /time limit|memory limit/],
    ['a string doubled 40 times', HOSTILE_TEMPLATES[3], /time limit|memory limit/],
    ['a syntax error', HOSTILE_TEMPLATES[4], /Parser Error: Expected }}/],
    ['raise_exception', HOSTILE_TEMPLATES[5], /Jinja Exception: no/],
  ])('%s is one line of error, in under 5 s', (name, template, pattern) => {
    const model = withTemplate(name.replace(/\W+/g, '-'), template);
    const t0 = performance.now();
    const error = (() => {
      try {
        renderChatTemplate(model, messages, true);
      } catch (err) {
        return err as Error;
      }
    })();
    expect(performance.now() - t0).toBeLessThan(5000);
    // The renderer's limits hold the memory in its own process: cllm's stays small.
    expect(process.memoryUsage().rss).toBeLessThan(500 * 2 ** 20);
    expect(error?.message).toMatch(/^the chat template could not be applied: /);
    expect(error?.message).toMatch(pattern);
    expect(error?.message).not.toContain('\n');
  });

  it('leaves a chat in plain completion, saying why once', async () => {
    const model = withTemplate('chat-loop', HOSTILE_TEMPLATES[2]);
    const proc = pty.spawn(process.execPath, [cllm, 'run', '-m', model, '--temp', '0', '-n', '4'], { cols: 160, rows: 30, env: { ...process.env, NO_COLOR: '1' } as Record<string, string> });
    let screen = '';
    proc.onData((d) => (screen += d.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')));
    const exited = new Promise<number>((resolve) => proc.onExit(({ exitCode }) => resolve(exitCode)));
    const waitFor = async (pattern: RegExp) => {
      for (const deadline = Date.now() + 30_000; !pattern.test(screen); await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; screen:\n${screen}`);
      }
    };
    await waitFor(/the chat template could not be applied: it ran past its (time limit \(1 s\)|memory limit \(256 MB\)): plain completion[\s\S]*> $/);
    proc.write('Once upon a time\r');
    await waitFor(/Once upon a time\s+\S[^\n]*\n> $/);
    proc.write('/exit\r');
    expect(await exited).toBe(0);
    expect(screen.match(/could not be applied/g)).toHaveLength(1);
  });

  it('stops a one-shot run with one line and exit code 1', () => {
    const model = withTemplate('cli-loop', HOSTILE_TEMPLATES[2]);
    const result = runCli(['run', '-m', model, '-n', '4', 'hi'], { timeout: 30_000 });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^cllm: the chat template could not be applied: it ran past its (time|memory) limit/)]);
  });
});

// What serving costs: the same prompts decoded in this process (what `cllm run` does) and through a
// `cllm serve` child over loopback HTTP with streaming, taking turns prompt by prompt. Prints the median time
// to first token of both, and the median time per token after it (the stream's pace), and the server's
// overhead on each.
// Usage: node --import tsx bench/serve-overhead.ts -m MODEL [--prompts FILE.jsonl] [--limit N] [--max-tokens N] [--threads N] [--repeat N] [--decoder auto|jacobi|ar]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readPromptFile } from '../src/cli/files.js';
import { complete, type DecoderName } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { Sequence } from '../src/engine/sequence.js';
import { median } from '../src/tasks/bench.js';
import { STORY_OPENERS } from '../src/tasks/prompt-sets.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', short: 'm' },
    prompts: { type: 'string' },
    limit: { type: 'string', default: '10' },
    'max-tokens': { type: 'string', default: '128' },
    threads: { type: 'string', default: '2' },
    repeat: { type: 'string', default: '3' },
    decoder: { type: 'string', default: 'auto' },
  },
});
if (!args.model) throw new Error('usage: bench/serve-overhead.ts -m MODEL [--prompts FILE.jsonl] [--limit N] [--max-tokens N] [--threads N] [--repeat N] [--decoder NAME]');
const prompts = (args.prompts ? readPromptFile(args.prompts).map((p) => ('prompt' in p ? p.prompt : p.messages.map((m) => m.content).join('\n'))) : STORY_OPENERS).slice(0, Number(args.limit));
const maxTokens = Number(args['max-tokens']);
const decoder = args.decoder as DecoderName;
const sampling = { temperature: 0 };

const model = await Model.load(args.model);
const sequence = new Sequence(model.createContext({ contextSize: 2048, threads: Number(args.threads) }));

const cllm = fileURLToPath(new URL('../bin/cllm.js', import.meta.url));
const child = spawn(process.execPath, [cllm, 'serve', '-m', args.model, '--port', '0', '--ctx', '2048', '--threads', args.threads!, '--decoder', decoder], { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise<string>((resolve, reject) => {
  let log = '';
  child.stderr!.on('data', (d) => {
    log += d;
    const match = /on (http:\/\/\S+)\/v1/.exec(log);
    if (match) resolve(match[1]);
  });
  child.on('exit', () => reject(new Error(`cllm serve exited:\n${log}`)));
});

interface Timing {
  msPerToken: number;
  firstTokenMs: number;
  text: string;
}

async function inProcess(prompt: string): Promise<Timing> {
  sequence.reset();
  const stream = model.textStream();
  let text = '';
  let first = 0;
  const start = performance.now();
  const { result } = await complete(sequence, Array.from(model.tokenize(prompt)), {
    decoder,
    maxTokens,
    sampling,
    onTokens: (tokens) => {
      first ||= performance.now();
      text += tokens.map((t) => stream.push(t)).join('');
    },
  });
  return { msPerToken: (performance.now() - first) / (result.tokens.length - 1), firstTokenMs: first - start, text: text + stream.flush() };
}

async function served(prompt: string): Promise<Timing> {
  const start = performance.now();
  const response = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true }, ...sampling }) });
  const decoder = new TextDecoder();
  let buffer = '';
  let text = '';
  let first = 0;
  let tokens = 0;
  for await (const bytes of response.body!) {
    buffer += decoder.decode(bytes, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = buffer.slice(0, end).replace(/^data: /, '');
      buffer = buffer.slice(end + 2);
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data);
      const piece = chunk.choices[0]?.text ?? '';
      if (piece) first ||= performance.now();
      text += piece;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  return { msPerToken: (performance.now() - first) / (tokens - 1), firstTokenMs: first - start, text };
}

// A round's order alternates, so that neither side always runs right after the other. Each run waits for
// the other side's CPU workers, which keep spinning a while after their last pass, to go to sleep.
const pause = () => new Promise((r) => setTimeout(r, 250));
const rows: { local: Timing; server: Timing }[] = [];
await served(prompts[0]);
await inProcess(prompts[0]);
for (let round = 0; round < Number(args.repeat); round++) {
  for (const prompt of prompts) {
    let local: Timing;
    let server: Timing;
    if (round % 2 === 0) {
      await pause();
      local = await inProcess(prompt);
      await pause();
      server = await served(prompt);
    } else {
      await pause();
      server = await served(prompt);
      await pause();
      local = await inProcess(prompt);
    }
    if (server.text !== local.text) throw new Error(`the server's text differs from the in-process text for "${prompt.slice(0, 40)}"`);
    rows.push({ local, server });
  }
}
child.kill('SIGTERM');
model.dispose();

const perToken = { local: median(rows.map((r) => r.local.msPerToken)), server: median(rows.map((r) => r.server.msPerToken)) };
const firstToken = { local: median(rows.map((r) => r.local.firstTokenMs)), server: median(rows.map((r) => r.server.firstTokenMs)) };
const overhead = median(rows.map((r) => r.server.msPerToken / r.local.msPerToken)) - 1;
console.log(`${rows.length} runs (${prompts.length} prompts x ${args.repeat}), ${maxTokens} tokens, --decoder ${decoder}, ${args.threads} threads, greedy; every served text equals the in-process one`);
console.log('| | in process (cllm run) | cllm serve, streamed | difference |');
console.log('| --- | ---: | ---: | ---: |');
console.log(`| time to first token (median) | ${firstToken.local.toFixed(1)} ms | ${firstToken.server.toFixed(1)} ms | ${(firstToken.server - firstToken.local).toFixed(1)} ms |`);
console.log(`| time per token after the first (median) | ${perToken.local.toFixed(3)} ms | ${perToken.server.toFixed(3)} ms | ${(100 * overhead).toFixed(1)}% (median of paired ratios) |`);

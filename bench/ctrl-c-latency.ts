// How long cllm takes to exit after Ctrl-C (SIGINT) during a model load, a long prefill and generation:
// usage `node --import tsx bench/ctrl-c-latency.ts [--rounds 5]`. The load case uses a 1.2 GB model of zeros
// (stories260K's vocabulary, 2048 wide, 6 layers, F32) written once to the temp folder, read with --no-mmap.
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, closeSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseGguf, writeGguf } from '../test/support/gguf-mutate.js';
import { havePycoder, pycoderModel, storiesModel } from '../test/support/models.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const cllm = new URL('../bin/cllm.js', import.meta.url).pathname;

/** A large model of zeros: the header of a real one with wider tensors, the data written in chunks. */
function bigModel(): string {
  const path = join(tmpdir(), 'cllm-ctrl-c-2048x6.gguf');
  if (existsSync(path)) return path;
  const g = parseGguf(readFileSync(storiesModel));
  const [width, ff, layers, vocab] = [2048, 5632, 6, 512];
  const set = (key: string, value: number) => g.kv.set(`llama.${key}`, { type: 4, value });
  set('embedding_length', width);
  set('feed_forward_length', ff);
  set('block_count', layers);
  set('attention.head_count', 16);
  set('attention.head_count_kv', 16);
  set('rope.dimension_count', 128);
  const shapes: [string, number[]][] = [['token_embd.weight', [width, vocab]], ['output_norm.weight', [width]], ['output.weight', [width, vocab]]];
  for (let l = 0; l < layers; l++) {
    for (const [name, dims] of [['attn_q', [width, width]], ['attn_k', [width, width]], ['attn_v', [width, width]], ['attn_output', [width, width]], ['attn_norm', [width]], ['ffn_gate', [width, ff]], ['ffn_down', [ff, width]], ['ffn_up', [width, ff]], ['ffn_norm', [width]]] as const) {
      shapes.push([`blk.${l}.${name}.weight`, [...dims]]);
    }
  }
  let offset = 0n;
  g.tensors = shapes.map(([name, dims]) => {
    const t = { name, dims: dims.map(BigInt), type: 0, offset };
    offset += BigInt(Math.ceil((dims.reduce((a, b) => a * b, 1) * 4) / 32) * 32);
    return t;
  });
  g.data = Buffer.alloc(0);
  const fd = openSync(path, 'w');
  writeSync(fd, writeGguf(g));
  const chunk = Buffer.alloc(64 << 20);
  for (let left = Number(offset); left > 0; left -= chunk.length) writeSync(fd, chunk, 0, Math.min(left, chunk.length));
  closeSync(fd);
  return path;
}

/** Starts the CLI, sends SIGINT once `ready` says so, and measures until the process has exited. */
function interrupt(args: string[], ready: (child: ReturnType<typeof spawn>) => Promise<void>, input?: string): Promise<{ ms: number; code: number | null }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cllm, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    if (input !== undefined) child.stdin!.end(input);
    let sent = 0;
    child.on('close', (code) => done({ ms: performance.now() - sent, code }));
    void ready(child).then(() => {
      sent = performance.now();
      child.kill('SIGINT');
    });
  });
}

const sleep = (ms: number) => () => new Promise<void>((r) => setTimeout(r, ms));
const firstOutput = (child: ReturnType<typeof spawn>) => new Promise<void>((r) => child.stdout!.once('data', () => r()));
const big = bigModel();
const longPrompt = 'the little girl played with her ball in the park. '.repeat(700);
const cases: [string, () => Promise<{ ms: number; code: number | null }>][] = [
  ['load (1.2 GB, --no-mmap)', () => interrupt(['run', '-m', big, '--no-mmap', '-n', '4', 'hi'], sleep(700))],
  ['prefill (7,700 tokens)', () => interrupt(['run', '-m', havePycoder ? pycoderModel : storiesModel, '--raw', '-c', '16384', '-b', '8192', '-t', '1', '-n', '4', '-'], sleep(2500), longPrompt)],
  ['generation', () => interrupt(['run', '-m', storiesModel, '--raw', '-c', '2048', '-n', '100000', 'Once upon a time'], firstOutput)],
];
console.log('phase                      exit  latency ms (each round)');
for (const [name, once] of cases) {
  const results = [];
  for (let i = 0; i < Number(values.rounds); i++) results.push(await once());
  console.log(`${name.padEnd(26)} ${String(results[0].code).padEnd(5)} ${results.map((r) => r.ms.toFixed(0)).join(', ')}  (max ${Math.max(...results.map((r) => r.ms)).toFixed(0)})`);
}

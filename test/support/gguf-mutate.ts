// A deterministic GGUF mutator for the fuzz test: it parses a model, changes one thing (a tensor type, a
// hyperparameter, the vocabulary, a chat template, the alignment, a byte of the header, the length) and
// writes the file back with a valid structure, so that most mutants get past the parser and into llama.cpp.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Scalar = { type: number; value: number | bigint | boolean | string };
type Value = Scalar | { type: 9; itemType: number; items: (number | bigint | boolean | string)[] };
interface Tensor {
  name: string;
  dims: bigint[];
  type: number;
  offset: bigint;
}
export interface Gguf {
  version: number;
  kv: Map<string, Value>;
  tensors: Tensor[];
  data: Buffer;
}

const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export function parseGguf(buf: Buffer): Gguf {
  let at = 4;
  const u32 = () => ((at += 4), buf.readUInt32LE(at - 4));
  const u64 = () => ((at += 8), buf.readBigUInt64LE(at - 8));
  const str = () => {
    const n = Number(u64());
    at += n;
    return buf.toString('utf8', at - n, at);
  };
  const scalar = (type: number): number | bigint | boolean | string => {
    if (type === 8) return str();
    const p = at;
    at += SIZES[type];
    const readers: ((offset: number) => number | bigint | boolean)[] = [
      (o) => buf.readUInt8(o), (o) => buf.readInt8(o), (o) => buf.readUInt16LE(o), (o) => buf.readInt16LE(o),
      (o) => buf.readUInt32LE(o), (o) => buf.readInt32LE(o), (o) => buf.readFloatLE(o), (o) => buf.readUInt8(o) !== 0,
    ];
    readers[10] = (o) => buf.readBigUInt64LE(o);
    readers[11] = (o) => buf.readBigInt64LE(o);
    readers[12] = (o) => buf.readDoubleLE(o);
    return readers[type](p);
  };
  const version = u32();
  const nTensors = Number(u64());
  const nKv = Number(u64());
  const kv = new Map<string, Value>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    if (type === 9) {
      const itemType = u32();
      const n = Number(u64());
      const items = [];
      for (let j = 0; j < n; j++) items.push(scalar(itemType));
      kv.set(key, { type: 9, itemType, items });
    } else kv.set(key, { type, value: scalar(type) });
  }
  const tensors: Tensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nDims = u32();
    const dims = Array.from({ length: nDims }, u64);
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = Number((kv.get('general.alignment') as Scalar | undefined)?.value ?? 32);
  at = Math.ceil(at / alignment) * alignment;
  return { version, kv, tensors, data: buf.subarray(at) };
}

export function writeGguf(g: Gguf): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n >>> 0);
    parts.push(b);
  };
  const u64 = (n: bigint | number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(n)));
    parts.push(b);
  };
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    u64(b.length);
    parts.push(b);
  };
  const scalar = (type: number, v: number | bigint | boolean | string) => {
    if (type === 8) return str(String(v));
    const b = Buffer.alloc(SIZES[type]);
    const n = typeof v === 'boolean' ? Number(v) : v;
    if (type === 10 || type === 11) b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(typeof n === 'number' ? Math.trunc(Number.isFinite(n) ? n : 0) : n)));
    else if (type === 6) b.writeFloatLE(Number(n));
    else if (type === 12) b.writeDoubleLE(Number(n));
    else {
      const bits = SIZES[type] * 8;
      const i = BigInt.asUintN(bits, BigInt(Math.trunc(Number.isFinite(Number(n)) ? Number(n) : 0)));
      b.writeUIntLE(Number(i), 0, SIZES[type]);
    }
    parts.push(b);
  };
  parts.push(Buffer.from('GGUF'));
  u32(g.version);
  u64(g.tensors.length);
  u64(g.kv.size);
  for (const [key, value] of g.kv) {
    str(key);
    u32(value.type);
    if (value.type === 9) {
      const { itemType, items } = value as { itemType: number; items: (number | bigint | boolean | string)[] };
      u32(itemType);
      u64(items.length);
      for (const item of items) scalar(itemType, item);
    } else scalar(value.type, (value as Scalar).value);
  }
  for (const t of g.tensors) {
    str(t.name);
    u32(t.dims.length);
    t.dims.forEach(u64);
    u32(t.type);
    u64(t.offset);
  }
  const header = Buffer.concat(parts);
  const alignment = Number((g.kv.get('general.alignment') as Scalar | undefined)?.value ?? 32) || 1;
  const padded = Math.ceil(header.length / alignment) * alignment;
  return Buffer.concat([header, Buffer.alloc(padded - header.length), g.data]);
}

/** A small seeded PRNG (mulberry32), so that mutant i of seed s is the same file on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Chat templates that try to exhaust the stack, memory or time of whoever renders them. */
export const HOSTILE_TEMPLATES = [
  '{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}',
  '{{ ' + '('.repeat(100000) + '1' + ')'.repeat(100000) + ' }}',
  '{% for i in range(1000000000) %}x{% endfor %}',
  '{% set s = "ab" %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}{{ s }}',
  '{% for m in messages %}{{ m.content }{% endfor %}',
  '{{ raise_exception("no") }}',
  '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}',
];

const INTEGER_VALUES = [0, -1, 1, 2, 513, 1000, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 3];
const FLOAT_VALUES = [0, -1, NaN, Infinity, -Infinity, 1e30, 1e-30, 2];
const TYPE_IDS = [0, 1, 2, 4, 8, 9, 12, 15, 24, 25, 26, 27, 28, 30, 39, 40, 41, 42, 43, 99, 2 ** 31];

export interface Mutant {
  description: string;
  bytes: Buffer;
}

/** Mutant `index` of `seed`: one change to the model in `path`, described in a few words. */
export function mutate(original: Buffer, seed: number, index: number): Mutant {
  const rand = prng(seed * 100003 + index);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)];
  const g = parseGguf(original);
  const arch = String((g.kv.get('general.architecture') as Scalar).value);
  const kind = index % 10;
  let description: string;
  if (kind === 0) {
    const t = pick(g.tensors);
    t.type = pick(TYPE_IDS);
    description = `tensor ${t.name} type ${t.type}`;
  } else if (kind === 1) {
    const t = pick(g.tensors);
    const what = Math.floor(rand() * 3);
    if (what === 0) t.dims[Math.floor(rand() * t.dims.length)] = BigInt(pick([0, 1, 2, 7, 65536, 2 ** 40]));
    else if (what === 1) t.offset = BigInt(pick([1, 31, 2 ** 20, 2 ** 40]));
    else t.dims.reverse();
    description = `tensor ${t.name} dims ${t.dims.join('x')} offset ${t.offset}`;
  } else if (kind === 2 || kind === 3) {
    const numeric = [...g.kv.entries()].filter(([k, v]) => k.startsWith(arch + '.') && v.type !== 9 && v.type !== 8);
    const [key, value] = pick(numeric);
    const v = value as Scalar;
    if (rand() < 0.15) {
      g.kv.set(key, { type: 8, value: 'many' });
      description = `${key} as a string`;
    } else {
      v.value = v.type === 6 || v.type === 12 ? pick(FLOAT_VALUES) : pick(INTEGER_VALUES);
      description = `${key} = ${v.value}`;
    }
  } else if (kind === 4) {
    const tokens = g.kv.get('tokenizer.ggml.tokens') as { items: string[] };
    const what = Math.floor(rand() * 4);
    const i = Math.floor(rand() * tokens.items.length);
    const j = Math.floor(rand() * tokens.items.length);
    if (what === 0 && i !== j) tokens.items[j] = tokens.items[i];
    else if (what === 1) tokens.items[i] = '';
    else if (what === 2) tokens.items.length = Math.max(1, Math.floor(tokens.items.length * rand()));
    else g.kv.set(pick(['tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id']), { type: 4, value: pick([tokens.items.length, 2 ** 31 - 1, 2 ** 32 - 1]) });
    description = `vocabulary change ${what} at ${i}/${j}`;
  } else if (kind === 5) {
    const template = pick(HOSTILE_TEMPLATES);
    g.kv.set('tokenizer.chat_template', { type: 8, value: template });
    description = `chat template ${JSON.stringify(template.slice(0, 50))}`;
  } else if (kind === 6) {
    const alignment = pick([1, 2, 3, 16, 64, 0]);
    g.kv.set('general.alignment', { type: 4, value: alignment });
    description = `general.alignment ${alignment}`;
  } else if (kind === 7) {
    const change = pick([
      () => g.kv.set(`${arch}.expert_count`, { type: 4, value: pick([0, 2, 8, 100000]) }),
      () => g.kv.set(`${arch}.expert_used_count`, { type: 4, value: pick([1, 2, 9]) }),
      () => g.kv.set(`${arch}.rope.scaling.type`, { type: 8, value: pick(['yarn', 'bogus', '']) }),
      () => g.kv.set('tokenizer.ggml.model', { type: 8, value: pick(['bert', 't5', 'rwkv', 'gpt2', 'none', 'plamo2', 'nope']) }),
      () => g.kv.set('general.architecture', { type: 8, value: pick(['bert', 'gpt2', 'mamba', 'rwkv6', 't5', 'nosuch']) }),
    ]);
    change();
    description = `settings ${[...g.kv.keys()].slice(-1)[0]}`;
  } else if (kind === 8) {
    const bytes = writeGguf(g);
    const cut = Math.floor(rand() * bytes.length);
    return { description: `truncated at ${cut} of ${bytes.length}`, bytes: bytes.subarray(0, cut) };
  } else {
    const bytes = Buffer.from(writeGguf(g));
    const headerEnd = bytes.length - g.data.length;
    const flips = 1 + Math.floor(rand() * 4);
    const at: number[] = [];
    for (let f = 0; f < flips; f++) {
      const p = Math.floor(rand() * headerEnd);
      bytes[p] ^= 1 << Math.floor(rand() * 8);
      at.push(p);
    }
    return { description: `header bytes flipped at ${at.join(',')}`, bytes };
  }
  return { description, bytes: writeGguf(g) };
}

export type Outcome = 'ok' | 'clean error' | 'signal' | 'hang' | 'stack trace' | 'guarded crash';

const CLI = new URL('../../bin/cllm.js', import.meta.url).pathname;
const TRACE = /^\s+at |node:internal|terminate called|ggml_print_backtrace|^#\d+ +0x|Segmentation fault/m;
const GUARDED = /llama\.cpp (crashed|aborted|cannot go on|failed)/;

/** Runs the CLI on a file with a time limit and says how it ended. */
export function runCli(args: string[], timeoutMs: number): Promise<{ outcome: Outcome; stderr: string; ms: number }> {
  return new Promise((done) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Date.now() - t0;
      let outcome: Outcome;
      if (ms >= timeoutMs) outcome = 'hang';
      else if (signal) outcome = 'signal';
      else if (TRACE.test(stderr) || stderr.trim().split('\n').length > 3) outcome = 'stack trace';
      else if (GUARDED.test(stderr)) outcome = 'guarded crash';
      else outcome = code === 0 ? 'ok' : 'clean error';
      done({ outcome, stderr, ms });
    });
  });
}

/** A mutant through `cllm info` and a short `cllm run`: the worse of the two outcomes. */
export async function tryMutant(file: string, timeoutMs = 20000): Promise<{ outcome: Outcome; stderr: string }> {
  const order: Outcome[] = ['ok', 'clean error', 'guarded crash', 'stack trace', 'hang', 'signal'];
  const info = await runCli(['info', '-m', file], timeoutMs);
  const run = await runCli(['run', '-m', file, '--temp', '0', '--max-tokens', '4', '--ctx', '64', '--threads', '1', 'Once upon a time'], timeoutMs);
  return order.indexOf(info.outcome) >= order.indexOf(run.outcome) ? info : run;
}

/** Mutants 0 to count - 1 of `seed`, `jobs` at a time, through tryMutant: how many ended each way, and each bad case. */
export async function fuzz(original: Buffer, seed: number, count: number, jobs = 2): Promise<{ outcomes: Partial<Record<Outcome, number>>; bad: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'cllm-fuzz-'));
  const outcomes: Partial<Record<Outcome, number>> = {};
  const bad: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const mutant = mutate(original, seed, index);
      const file = join(dir, `mutant-${index}.gguf`);
      writeFileSync(file, mutant.bytes);
      const { outcome, stderr } = await tryMutant(file);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (outcome !== 'ok' && outcome !== 'clean error') bad.push(`mutant ${index} (${mutant.description}): ${outcome}: ${stderr.trim().slice(0, 300)}`);
      rmSync(file);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  rmSync(dir, { recursive: true, force: true });
  return { outcomes, bad };
}

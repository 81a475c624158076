// Writes a tiny, deterministic, random-weight llama GGUF (F32) with a SentencePiece-style vocabulary and a
// ChatML template, so that a fresh clone can exercise the addon, the decoders and chat mode without any
// downloaded model. Usage: npm run fixture [-- OUT.gguf]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../src/engine/drafters/fill.js';

export const FIXTURE_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../test/fixtures/tiny-random-llama.gguf');

const N_EMBD = 64;
const N_HEAD = 4;
const N_HEAD_KV = 2;
const N_LAYER = 2;
const N_FF = 128;
const N_CTX_TRAIN = 2048;
const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const WORDS = [
  'the', 'a', 'and', 'to', 'was', 'he', 'she', 'it', 'they', 'of', 'in', 'on', 'with', 'for', 'is', 'that', 'once',
  'upon', 'time', 'there', 'little', 'girl', 'boy', 'named', 'lily', 'tom', 'day', 'dog', 'cat', 'tree', 'park',
  'happy', 'sad', 'big', 'small', 'play', 'played', 'saw', 'said', 'went', 'friend', 'sun', 'ball', 'red', 'blue',
  'hello', 'what', 'how', 'who', 'why', 'code', 'two', 'plus', 'equals',
];

// GGUF value types and the F32 tensor type.
const T = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;
const GGML_TYPE_F32 = 0;
const ALIGNMENT = 32;

type Value =
  | { type: typeof T.UINT32 | typeof T.INT32 | typeof T.FLOAT32; value: number }
  | { type: typeof T.BOOL; value: boolean }
  | { type: typeof T.STRING; value: string }
  | { type: typeof T.ARRAY; items: typeof T.INT32 | typeof T.FLOAT32 | typeof T.STRING; value: (number | string)[] };

class Writer {
  private chunks: Buffer[] = [];
  length = 0;
  push(buf: Buffer): void {
    this.chunks.push(buf);
    this.length += buf.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(type: number, v: number | string | boolean): void {
    if (type === T.UINT32) this.u32(v as number);
    else if (type === T.INT32) this.i32(v as number);
    else if (type === T.FLOAT32) this.f32(v as number);
    else if (type === T.BOOL) this.push(Buffer.from([v ? 1 : 0]));
    else this.str(v as string);
  }
  pad(): void {
    const rem = this.length % ALIGNMENT;
    if (rem) this.push(Buffer.alloc(ALIGNMENT - rem));
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function vocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'];
  const types = [2, 3, 3, 3, 3];
  const scores = [0, 0, 0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
    scores.push(0);
  }
  const pieces = new Set<string>(['▁']);
  for (let c = 33; c < 127; c++) pieces.add(String.fromCharCode(c));
  // SentencePiece merges pairs whose concatenation is in the vocabulary, so every prefix of a word is a piece.
  for (const word of WORDS) for (let i = 1; i <= word.length; i++) pieces.add('▁' + word.slice(0, i));
  for (const piece of pieces) {
    tokens.push(piece);
    types.push(1);
    scores.push(-1000 + piece.length * 10);
  }
  return { tokens, scores, types };
}

export function buildFixture(seed = 1234): Buffer {
  const { tokens, scores, types } = vocabulary();
  const nVocab = tokens.length;
  const kv: [string, Value][] = [
    ['general.architecture', { type: T.STRING, value: 'llama' }],
    ['general.name', { type: T.STRING, value: 'cllm tiny random llama' }],
    ['general.file_type', { type: T.UINT32, value: 0 }],
    ['llama.context_length', { type: T.UINT32, value: N_CTX_TRAIN }],
    ['llama.embedding_length', { type: T.UINT32, value: N_EMBD }],
    ['llama.block_count', { type: T.UINT32, value: N_LAYER }],
    ['llama.feed_forward_length', { type: T.UINT32, value: N_FF }],
    ['llama.attention.head_count', { type: T.UINT32, value: N_HEAD }],
    ['llama.attention.head_count_kv', { type: T.UINT32, value: N_HEAD_KV }],
    ['llama.rope.dimension_count', { type: T.UINT32, value: N_EMBD / N_HEAD }],
    ['llama.attention.layer_norm_rms_epsilon', { type: T.FLOAT32, value: 1e-5 }],
    ['tokenizer.ggml.model', { type: T.STRING, value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: T.ARRAY, items: T.STRING, value: tokens }],
    ['tokenizer.ggml.scores', { type: T.ARRAY, items: T.FLOAT32, value: scores }],
    ['tokenizer.ggml.token_type', { type: T.ARRAY, items: T.INT32, value: types }],
    ['tokenizer.ggml.unknown_token_id', { type: T.UINT32, value: 0 }],
    ['tokenizer.ggml.bos_token_id', { type: T.UINT32, value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: T.UINT32, value: 2 }],
    ['tokenizer.ggml.add_bos_token', { type: T.BOOL, value: true }],
    ['tokenizer.chat_template', { type: T.STRING, value: CHATML }],
  ];

  // [name, dims (innermost first), standard deviation]. Large output weights keep the logits well apart,
  // so that greedy decoding has few near-ties.
  const headDim = N_EMBD / N_HEAD;
  const tensors: [string, number[], number][] = [
    ['token_embd.weight', [N_EMBD, nVocab], 1],
    ['output_norm.weight', [N_EMBD], 0],
    ['output.weight', [N_EMBD, nVocab], 3 / Math.sqrt(N_EMBD)],
  ];
  for (let l = 0; l < N_LAYER; l++) {
    tensors.push(
      [`blk.${l}.attn_norm.weight`, [N_EMBD], 0],
      [`blk.${l}.attn_q.weight`, [N_EMBD, N_EMBD], 1 / Math.sqrt(N_EMBD)],
      [`blk.${l}.attn_k.weight`, [N_EMBD, N_HEAD_KV * headDim], 1 / Math.sqrt(N_EMBD)],
      [`blk.${l}.attn_v.weight`, [N_EMBD, N_HEAD_KV * headDim], 1 / Math.sqrt(N_EMBD)],
      [`blk.${l}.attn_output.weight`, [N_EMBD, N_EMBD], 1 / Math.sqrt(N_EMBD)],
      [`blk.${l}.ffn_norm.weight`, [N_EMBD], 0],
      [`blk.${l}.ffn_gate.weight`, [N_EMBD, N_FF], 1 / Math.sqrt(N_EMBD)],
      [`blk.${l}.ffn_up.weight`, [N_EMBD, N_FF], 1 / Math.sqrt(N_EMBD)],
      [`blk.${l}.ffn_down.weight`, [N_FF, N_EMBD], 1 / Math.sqrt(N_FF)],
    );
  }

  const w = new Writer();
  w.push(Buffer.from('GGUF', 'latin1'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const [key, v] of kv) {
    w.str(key);
    w.u32(v.type);
    if (v.type === T.ARRAY) {
      w.u32(v.items);
      w.u64(v.value.length);
      for (const item of v.value) w.scalar(v.items, item);
    } else {
      w.scalar(v.type, v.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const [name, dims] of tensors) {
    w.str(name);
    w.u32(dims.length);
    for (const d of dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offsets.push(offset);
    const bytes = dims.reduce((a, b) => a * b, 1) * 4;
    offset += Math.ceil(bytes / ALIGNMENT) * ALIGNMENT;
  }
  w.pad();

  const random = seededRandom(seed);
  const data = Buffer.alloc(offset);
  tensors.forEach(([, dims, std], i) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(data.buffer, data.byteOffset + offsets[i], n);
    // Uniform on [-std*sqrt(3), std*sqrt(3)] has the given standard deviation; std 0 marks a norm weight of 1.
    for (let j = 0; j < n; j++) values[j] = std === 0 ? 1 : (random() * 2 - 1) * std * Math.sqrt(3);
  });
  w.push(data);
  return w.bytes();
}

export function writeFixture(path = FIXTURE_PATH): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, buildFixture());
  return path;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(writeFixture(process.argv[2] ? resolve(process.argv[2]) : undefined));
}

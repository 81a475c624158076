// A GGUF file is checked here before llama.cpp sees it. llama.cpp trusts a file's metadata and tensor types:
// values it cannot handle (a norm stored as integers, 0 layers, two tokens with the same text) end in an
// assertion or a segfault deep inside it. Each check below names a key or tensor and what is wrong with it.
import { closeSync, openSync, readSync } from 'node:fs';
import { CllmError } from '../engine/errors.js';

/** GGUF value types, as numbered by the format. */
const enum ValueType {
  U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
}
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  name: string;
  dims: number[];
  type: number;
  offset: bigint;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
}

/** ggml type ids that a GGUF file may hold, with their names (removed types are absent). */
export const GGML_TYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S',
  20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64',
  29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4', 40: 'NVFP4', 41: 'Q1_0', 42: 'Q2_0',
};
/** Integer and F64 tensors hold no weights ggml can multiply or look rows up in; Q8_1 and Q8_K are only the other operand of a dot product. */
const NOT_A_WEIGHT_TYPE = new Set([9, 15, 24, 25, 26, 27, 28]);
/** llama.cpp's LLAMA_MAX_LAYERS and LLAMA_MAX_EXPERTS. */
const MAX_LAYERS = 512;
const MAX_EXPERTS = 1024;
const ROPE_SCALING_TYPES = new Set(['none', 'linear', 'yarn', 'longrope']);
/** ggml's CPU buffers need tensor data aligned this much when the file is mapped. */
const MIN_ALIGNMENT = 32;

class Truncated extends Error {}

/** A name from the file, as a message quotes it: a damaged length can make one megabytes long. */
function shown(name: string): string {
  return name.length > 60 ? `${name.slice(0, 60)}...` : name;
}

/** One window for every read: a check runs to its end synchronously, and loads leave no garbage behind. */
let sharedWindow = Buffer.allocUnsafe(64 << 10);

/** Reads the file window by window, so that only the header is ever read, never the tensor data. */
class Reader {
  private buffer = sharedWindow;
  private bufferStart = 0;
  private bufferLength = 0;
  offset = 0;

  constructor(private readonly fd: number, readonly size: number) {}

  private need(n: number): number {
    if (this.offset + n > this.size) throw new Truncated();
    if (this.offset < this.bufferStart || this.offset + n > this.bufferStart + this.bufferLength) {
      if (n > this.buffer.length) this.buffer = sharedWindow = Buffer.allocUnsafe(n);
      this.bufferLength = readSync(this.fd, this.buffer, 0, Math.min(this.size - this.offset, this.buffer.length), this.offset);
      if (this.bufferLength < n) throw new Truncated();
      this.bufferStart = this.offset;
    }
    const at = this.offset - this.bufferStart;
    this.offset += n;
    return at;
  }

  // need() may replace the buffer, so it runs before the buffer is read.
  u32(): number {
    const at = this.need(4);
    return this.buffer.readUInt32LE(at);
  }

  u64(): bigint {
    const at = this.need(8);
    return this.buffer.readBigUInt64LE(at);
  }

  /** A count that must fit in what is left of the file, `each` bytes at least per item. */
  count(each: number): number {
    const n = this.u64();
    if (n > BigInt(Math.floor((this.size - this.offset) / each))) throw new Truncated();
    return Number(n);
  }

  string(): string {
    const n = this.count(1);
    const at = this.need(n);
    return this.buffer.toString('utf8', at, at + n);
  }

  skip(n: number): void {
    if (this.offset + n > this.size) throw new Truncated();
    this.offset += n;
  }

  scalar(type: number): number | bigint | boolean {
    const at = this.need(SCALAR_BYTES[type]);
    const b = this.buffer;
    switch (type) {
      case ValueType.U8: return b.readUInt8(at);
      case ValueType.I8: return b.readInt8(at);
      case ValueType.U16: return b.readUInt16LE(at);
      case ValueType.I16: return b.readInt16LE(at);
      case ValueType.U32: return b.readUInt32LE(at);
      case ValueType.I32: return b.readInt32LE(at);
      case ValueType.F32: return b.readFloatLE(at);
      case ValueType.Bool: return b.readUInt8(at) !== 0;
      case ValueType.U64: return b.readBigUInt64LE(at);
      case ValueType.I64: return b.readBigInt64LE(at);
      default: return b.readDoubleLE(at);
    }
  }
}

function readValue(reader: Reader, type: number, key: string, keepArray: boolean): GgufValue {
  if (type === ValueType.String) return reader.string();
  if (type === ValueType.Array) {
    const itemType = reader.u32();
    if (itemType === ValueType.Array) throw new CllmError(`the GGUF key ${shown(key)} is an array of arrays, which GGUF does not allow`);
    if (itemType !== ValueType.String && !(itemType in SCALAR_BYTES)) throw new CllmError(`the GGUF key ${shown(key)} has an unknown item type ${itemType}`);
    const n = reader.count(itemType === ValueType.String ? 8 : SCALAR_BYTES[itemType]);
    // Large arrays other than the ones checked (merges, scores) are only stepped over.
    if (!keepArray && itemType !== ValueType.String) {
      reader.skip(n * SCALAR_BYTES[itemType]);
      return [];
    }
    const items: GgufValue[] = [];
    for (let i = 0; i < n; i++) {
      const item = readValue(reader, itemType, key, keepArray);
      if (keepArray) items.push(item);
    }
    return items;
  }
  if (!(type in SCALAR_BYTES)) throw new CllmError(`the GGUF key ${shown(key)} has an unknown value type ${type}`);
  return reader.scalar(type);
}

/** Arrays kept in full: the ones checked below. Others are skipped (or only their length kept). */
function keepArray(key: string): boolean {
  return key === 'tokenizer.ggml.tokens' || /\.attention\.head_count(_kv)?$/.test(key);
}

type Lengths = Map<string, number>;

/** Parses the header, metadata and tensor table of a GGUF file. Throws CllmError for a malformed file. */
export function readGgufHeader(path: string, size: number): GgufHeader & { lengths: Lengths } {
  const fd = openSync(path, 'r');
  try {
    const reader = new Reader(fd, size);
    reader.skip(4); // the magic, checked by the caller
    const version = reader.u32();
    if (version < 2 || version > 3) throw new CllmError(`unsupported GGUF version ${version} (cllm reads versions 2 and 3)`);
    const tensorCount = reader.count(8);
    const kvCount = reader.count(12);
    const metadata = new Map<string, GgufValue>();
    const lengths: Lengths = new Map();
    for (let i = 0; i < kvCount; i++) {
      const key = reader.string();
      const type = reader.u32();
      if (type === ValueType.Array) {
        const mark = reader.offset;
        reader.u32();
        lengths.set(key, Number(reader.u64()));
        reader.offset = mark;
      }
      if (metadata.has(key)) throw new CllmError(`the GGUF key ${shown(key)} appears twice`);
      metadata.set(key, readValue(reader, type, key, keepArray(key)));
    }
    const tensors: GgufTensor[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = reader.string();
      const nDims = reader.u32();
      if (nDims < 1 || nDims > 4) throw new CllmError(`tensor ${shown(name)} has ${nDims} dimensions (GGUF allows 1 to 4)`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(Number(reader.u64()));
      tensors.push({ name, dims, type: reader.u32(), offset: reader.u64() });
    }
    return { version, metadata, tensors, lengths };
  } catch (err) {
    if (err instanceof Truncated) throw new CllmError('the GGUF file is truncated or its header is damaged: a length runs past the end of the file');
    throw err;
  } finally {
    closeSync(fd);
  }
}

function asNumber(value: GgufValue | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'boolean') return Number(value);
  return undefined;
}

function numbers(value: GgufValue | undefined): number[] {
  if (Array.isArray(value)) return value.map((v) => asNumber(v) ?? NaN);
  const n = asNumber(value);
  return n === undefined ? [] : [n];
}

/** Throws a CllmError naming the first key or tensor of the file that llama.cpp could not use safely. */
export function checkGguf(path: string, size: number): void {
  const bad = (what: string): never => {
    throw new CllmError(`${path} is not a usable model: ${what}`);
  };
  let header;
  try {
    header = readGgufHeader(path, size);
  } catch (err) {
    if (!(err instanceof CllmError)) throw err;
    return bad(err.message);
  }
  const { metadata, tensors, lengths } = header;
  const arch = metadata.get('general.architecture');
  if (typeof arch !== 'string') bad('general.architecture is missing or not a string');
  const key = (name: string) => `${arch}.${name}`;
  const integerIn = (name: string, min: number, max: number) => {
    const value = metadata.get(name);
    if (value === undefined) return;
    for (const n of numbers(value)) {
      if (!Number.isInteger(n) || n < min || n > max) bad(`${name} is ${Array.isArray(value) ? `an array holding ${n}` : String(value)}; it must be an integer from ${min} to ${max}`);
    }
  };

  const alignment = metadata.get('general.alignment');
  if (alignment !== undefined) {
    const a = asNumber(alignment);
    if (a === undefined || !Number.isInteger(a) || a < MIN_ALIGNMENT || a > 1 << 20 || (a & (a - 1)) !== 0) {
      bad(`general.alignment is ${String(alignment)}; llama.cpp needs a power of two of at least ${MIN_ALIGNMENT}`);
    }
  }

  integerIn(key('block_count'), 1, MAX_LAYERS);
  integerIn(key('context_length'), 1, 2 ** 31 - 1);
  integerIn(key('embedding_length'), 1, 2 ** 31 - 1);
  integerIn(key('vocab_size'), 1, 2 ** 31 - 1);
  integerIn(key('attention.head_count'), 0, 2 ** 20);
  integerIn(key('attention.head_count_kv'), 0, 2 ** 20);
  integerIn(key('attention.key_length'), 1, 2 ** 20);
  integerIn(key('attention.value_length'), 1, 2 ** 20);
  integerIn(key('rope.dimension_count'), 0, 2 ** 20);
  integerIn(key('expert_count'), 0, MAX_EXPERTS);
  integerIn(key('expert_used_count'), 0, MAX_EXPERTS);
  for (const eps of ['attention.layer_norm_rms_epsilon', 'attention.layer_norm_epsilon']) {
    const value = metadata.get(key(eps));
    if (value === undefined) continue;
    const x = asNumber(value);
    if (x === undefined || !Number.isFinite(x) || x <= 0 || x >= 1) bad(`${key(eps)} is ${String(value)}; it must be a number between 0 and 1`);
  }
  for (const factor of ['rope.freq_base', 'rope.scaling.factor']) {
    const value = metadata.get(key(factor));
    const x = asNumber(value);
    if (value !== undefined && (x === undefined || !Number.isFinite(x) || x < 0)) bad(`${key(factor)} is ${String(value)}; it must be a finite number >= 0`);
  }

  // Heads split the width: a head count that does not divide it (without explicit head sizes) has no shape.
  const width = asNumber(metadata.get(key('embedding_length')));
  const heads = numbers(metadata.get(key('attention.head_count')));
  const kvHeads = numbers(metadata.get(key('attention.head_count_kv')));
  const explicitHeadSize = metadata.has(key('attention.key_length'));
  heads.forEach((h, layer) => {
    if (width !== undefined && h > 0 && !explicitHeadSize && width % h !== 0) bad(`${key('attention.head_count')} ${h} does not divide ${key('embedding_length')} ${width}`);
    const kv = kvHeads.length === 0 ? h : kvHeads[Math.min(layer, kvHeads.length - 1)];
    if (h > 0 && kv > 0 && h % kv !== 0) bad(`${key('attention.head_count_kv')} ${kv} does not divide ${key('attention.head_count')} ${h}`);
    if (h > 0 && kv === 0 && kvHeads.length <= 1) bad(`${key('attention.head_count_kv')} is 0`);
  });
  const layers = asNumber(metadata.get(key('block_count')));
  for (const name of ['attention.head_count', 'attention.head_count_kv']) {
    const n = lengths.get(key(name));
    if (n !== undefined && layers !== undefined && n !== layers) bad(`${key(name)} has ${n} values for ${layers} layers`);
  }

  // Mixture-of-experts settings only mean something where the file has expert tensors.
  const experts = asNumber(metadata.get(key('expert_count'))) ?? 0;
  const expertsUsed = asNumber(metadata.get(key('expert_used_count'))) ?? 0;
  const hasExpertTensors = tensors.some((t) => t.name.includes('_exps') || t.name.includes('ffn_gate_inp'));
  if (experts > 0 && !hasExpertTensors) bad(`${key('expert_count')} is ${experts}, but the file has no expert tensors`);
  if (expertsUsed > experts) bad(`${key('expert_used_count')} ${expertsUsed} is more than ${key('expert_count')} ${experts}`);
  if (hasExpertTensors && experts > 0 && expertsUsed === 0) bad(`${key('expert_used_count')} is 0 in a mixture-of-experts model`);

  const scaling = metadata.get(key('rope.scaling.type'));
  if (scaling !== undefined && (typeof scaling !== 'string' || !ROPE_SCALING_TYPES.has(scaling))) {
    bad(`${key('rope.scaling.type')} is "${String(scaling)}"; llama.cpp knows ${[...ROPE_SCALING_TYPES].join(', ')}`);
  }

  checkVocabulary(metadata, lengths, arch as string, bad);
  checkTensors(tensors, bad);
}

/** Tokenizers whose default special tokens and rules belong to particular architectures. */
function tokenizerFits(tokenizer: string, arch: string): boolean {
  if (tokenizer === 'bert') return arch.includes('bert');
  if (tokenizer === 't5') return arch.startsWith('t5');
  if (tokenizer === 'rwkv') return arch.startsWith('rwkv');
  if (tokenizer === 'plamo2') return arch.startsWith('plamo');
  if (tokenizer === 'gemma4') return arch.startsWith('gemma');
  return true;
}

function checkVocabulary(metadata: Map<string, GgufValue>, lengths: Lengths, arch: string, bad: (what: string) => never): void {
  const tokenizer = metadata.get('tokenizer.ggml.model');
  if (tokenizer !== undefined && typeof tokenizer !== 'string') bad('tokenizer.ggml.model is not a string');
  if (typeof tokenizer === 'string' && !tokenizerFits(tokenizer, arch)) bad(`tokenizer.ggml.model "${tokenizer}" does not belong with the ${arch} architecture`);
  const tokens = metadata.get('tokenizer.ggml.tokens');
  if (tokens === undefined) return;
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) bad('tokenizer.ggml.tokens is not an array of strings');
  const list = tokens as string[];
  const seen = new Map<string, number>();
  list.forEach((text, id) => {
    const first = seen.get(text);
    if (first !== undefined) bad(`tokenizer.ggml.tokens has the same text ${JSON.stringify(text.slice(0, 40))} at tokens ${first} and ${id}`);
    seen.set(text, id);
  });
  for (const [name, value] of metadata) {
    if (!/^tokenizer\.ggml\.\w+_token_id$/.test(name)) continue;
    const id = asNumber(value);
    // llama.cpp reads -1 (and its unsigned form) as "no such token".
    if (id === undefined || !Number.isInteger(id) || (id >= list.length && id !== 0xffffffff) || id < -1) bad(`${name} is ${String(value)}, outside the vocabulary of ${list.length} tokens`);
  }
  for (const parallel of ['tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
    const n = lengths.get(parallel);
    if (n !== undefined && n !== list.length) bad(`${parallel} has ${n} entries for ${list.length} tokens`);
  }
}

function checkTensors(tensors: GgufTensor[], bad: (what: string) => never): void {
  for (const t of tensors) {
    const typeName = GGML_TYPES[t.type];
    if (!typeName) bad(`tensor ${shown(t.name)} has an unknown type ${t.type}`);
    if (t.dims.some((d) => !Number.isSafeInteger(d) || d < 1)) bad(`tensor ${shown(t.name)} has a dimension of ${t.dims.find((d) => !Number.isSafeInteger(d) || d < 1)}`);
    // Norm weights and biases are added and multiplied element-wise with F32 activations.
    const elementwise = t.dims.filter((d) => d > 1).length <= 1 && !t.name.startsWith('token_embd');
    if (elementwise && t.type !== 0) bad(`tensor ${shown(t.name)} is ${typeName}; a one-dimensional tensor (a norm or a bias) must be F32`);
    if (!elementwise && NOT_A_WEIGHT_TYPE.has(t.type)) bad(`tensor ${shown(t.name)} is ${typeName}, which llama.cpp cannot use as weights`);
  }
}

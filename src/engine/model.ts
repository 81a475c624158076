import { open, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { availableParallelism, totalmem } from 'node:os';
import { native, type RawModel } from './addon.js';
import { Context, INTERRUPTED } from './context.js';
import { CllmError, fromNative } from './errors.js';
import { checkGguf } from '../model-files/gguf-check.js';
import { renderChatTemplate } from './chat-template.js';

export interface LoadOptions {
  /** Layers to offload to the GPU; -1 (default) offloads all that the backend can take. */
  gpuLayers?: number;
  useMmap?: boolean;
  /** llama.cpp RPC servers ("host:port") to spread the layers over, with this machine's GPUs. */
  rpc?: string[];
  /** Called with the loaded fraction, 0 to 1. */
  onProgress?: (fraction: number) => void;
}

export interface ModelInfo {
  path: string;
  architecture: string;
  name: string;
  description: string;
  parameterCount: number;
  fileBytes: number;
  tensorBytes: number;
  vocabularySize: number;
  trainedContextLength: number;
  layers: number;
  embeddingLength: number;
  headCount: number;
  headCountKv: number;
  bos: number;
  eos: number;
  addBos: boolean;
  recurrent: boolean;
  quantization: string;
  chatTemplate: string | null;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface ContextOptions {
  /** Default: the trained context length, capped at 4096. */
  contextSize?: number;
  /** Largest number of tokens in one llama_decode; longer blocks are split. Default 512. */
  batchSize?: number;
  /**
   * Default: the machine's core count, lowered at run time to 1 while that is faster (when other
   * processes compete for the cores). A number given here is kept as it is.
   */
  threads?: number;
  /**
   * Default true: kernels that compute each token of a block as they would compute it alone, so that block
   * decoding rounds like one token at a time (on the CPU with llama.cpp's F16 cache and flash attention, made
   * batch-invariant by native/patches; elsewhere an F32 cache without flash attention). false: llama.cpp's
   * own kernel choices: faster on CUDA, and Jacobi output may then differ from plain decoding at near-ties.
   */
  exact?: boolean;
}

async function checkGgufFile(path: string): Promise<number> {
  let size: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new CllmError(`model path is a directory, not a GGUF file: ${path}`);
    // A FIFO or a device would block the read below, or never end.
    if (!st.isFile()) throw new CllmError(`model path is not a regular file: ${path}`);
    size = st.size;
  } catch (err) {
    if (err instanceof CllmError) throw err;
    throw new CllmError(`model file not found: ${path}`);
  }
  const file = await open(path, 'r');
  try {
    const magic = Buffer.alloc(4);
    await file.read(magic, 0, 4, 0);
    if (magic.toString('latin1') !== 'GGUF') throw new CllmError(`not a GGUF model file: ${path}`);
  } finally {
    await file.close();
  }
  checkGguf(path, size);
  return size;
}

// llama.cpp reports a failed load as several "function: message" lines. The line after "error loading
// model:" says why, unless it is the generic "failed to load model from", when the first line does.
function loadFailureReason(message: string): string {
  const lines = message.split('\n').map((line) => line.replace(/^\w+: /, '').trim()).filter(Boolean);
  const marked = lines.find((line) => line.startsWith('error loading model:'));
  const reason = marked?.replace(/^error loading model: (llama_model_loader: )?/, '');
  if (reason && !reason.startsWith('failed to load model from')) return reason;
  return lines[0] ?? message;
}

/** ggml's RPC client aborts the process when it cannot connect, so a server is tried here first. */
function checkRpcServer(endpoint: string): Promise<void> {
  const colon = endpoint.lastIndexOf(':');
  const host = endpoint.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return new Promise((done, fail) => {
    const socket = connect({ host, port: Number(endpoint.slice(colon + 1)), timeout: 5000 }, () => {
      socket.end();
      done();
    });
    const unreachable = (why: string) => {
      socket.destroy();
      fail(new CllmError(`cannot reach the RPC server ${endpoint} (${why}): is ggml-rpc-server running there?`));
    };
    socket.on('error', (err: NodeJS.ErrnoException) => unreachable(err.code ?? err.message));
    socket.on('timeout', () => unreachable('no answer in 5 s'));
  });
}

/** A GGUF model loaded through llama.cpp. Free it with dispose(); its contexts are disposed with it. */
export class Model {
  readonly info: ModelInfo;
  private readonly contexts = new Set<Context>();

  private constructor(private raw: RawModel | undefined, info: ModelInfo) {
    this.info = info;
  }

  static async load(path: string, options: LoadOptions = {}): Promise<Model> {
    const fileBytes = await checkGgufFile(path);
    await Promise.all((options.rpc ?? []).map(checkRpcServer));
    let raw: RawModel;
    try {
      raw = await native().loadModel(path, { gpuLayers: options.gpuLayers ?? -1, useMmap: options.useMmap, rpc: options.rpc }, options.onProgress);
    } catch (err) {
      if ((err as Error).message === INTERRUPTED) throw new CllmError(INTERRUPTED, 130);
      throw new CllmError(`could not load model ${path}: ${loadFailureReason((err as Error).message)}`);
    }
    return new Model(raw, { path, fileBytes, ...raw.info() });
  }

  private get model(): RawModel {
    if (!this.raw) throw new CllmError('the model has been disposed');
    return this.raw;
  }

  get hasChatTemplate(): boolean {
    return this.info.chatTemplate !== null;
  }

  /** parseSpecial turns special-token text such as "<|im_start|>" into its token, as chat prompts need. */
  tokenize(text: string, { addBos = this.info.addBos, parseSpecial = false } = {}): Int32Array {
    try {
      return this.model.tokenize(text, addBos, parseSpecial);
    } catch (err) {
      // llama.cpp looks byte tokens such as <0x0A> up with unordered_map::at.
      const why = (err as Error).message;
      throw new CllmError(/unordered_map|out_of_range/.test(why) ? "the text cannot be tokenized: the model's vocabulary lacks a token it needs (a byte token such as <0x0A> is missing or damaged)" : why);
    }
  }

  detokenize(tokens: ArrayLike<number>, { renderSpecial = false } = {}): string {
    return fromNative(() => this.model.detokenize(Int32Array.from(tokens), renderSpecial));
  }

  /** A detokenizer for streamed output: it holds back a UTF-8 character until all its bytes have arrived. */
  textStream({ renderSpecial = false } = {}): TextStream {
    return new TextStream((token) => fromNative(() => this.model.tokenBytes(token, renderSpecial)));
  }

  /** One token's text, for display; a partial UTF-8 character shows as U+FFFD. */
  tokenText(token: number, { renderSpecial = false } = {}): string {
    return fromNative(() => this.model.tokenBytes(token, renderSpecial)).toString('utf8');
  }

  isEndOfGeneration(token: number): boolean {
    return this.model.isEog(token);
  }

  applyChatTemplate(messages: ChatMessage[], { addAssistant = true } = {}): string {
    if (!this.hasChatTemplate) throw new CllmError(`${this.info.path} has no chat template`);
    return renderChatTemplate(this.info.path, messages, addAssistant);
  }

  createContext(options: ContextOptions = {}): Context {
    const contextSize = options.contextSize ?? Math.min(this.info.trainedContextLength || 4096, 4096);
    const batchSize = Math.min(options.batchSize ?? 512, contextSize);
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new CllmError(`context size must be a positive integer, not ${contextSize}`);
    const exact = options.exact ?? true;
    const cacheBytes = this.kvCacheBytes(contextSize, exact);
    if (cacheBytes > totalmem()) {
      throw new CllmError(`a context of ${contextSize} tokens needs ${(cacheBytes / 2 ** 30).toFixed(1)} GiB of KV cache, more than this machine's ${(totalmem() / 2 ** 30).toFixed(1)} GiB of memory: lower --ctx`, 2);
    }
    if (!Number.isInteger(threads) || threads < 1) throw new CllmError(`threads must be a positive integer, not ${threads}`);
    const raw = fromNative(() => new (native().Context)(this.model, { contextSize, batchSize, threads, exact }));
    const context = new Context(raw, { contextSize: raw.size(), batchSize, threads, adaptThreads: options.threads === undefined }, (token) => this.isEndOfGeneration(token), () =>
      this.contexts.delete(context),
    );
    this.contexts.add(context);
    return context;
  }

  /** Keys and values of every layer: F16, or F32 in exact contexts where the build needs it. */
  kvCacheBytes(contextSize: number, exact = true): number {
    const { layers, embeddingLength, headCount, headCountKv } = this.info;
    const kvWidth = headCount > 0 ? (embeddingLength * headCountKv) / headCount : embeddingLength;
    return 2 * layers * contextSize * kvWidth * (exact && native().buildInfo().exactCacheType === 'f32' ? 4 : 2);
  }

  dispose(): void {
    for (const context of this.contexts) context.dispose();
    this.raw?.dispose();
    this.raw = undefined;
  }
}

export class TextStream {
  private readonly decoder = new TextDecoder('utf-8');

  constructor(private readonly bytesOf: (token: number) => Buffer) {}

  /** The text that token completes; '' while a multi-byte character is still partial. */
  push(token: number): string {
    return this.decoder.decode(this.bytesOf(token), { stream: true });
  }

  /** Whatever is held back, with an incomplete character as U+FFFD. */
  flush(): string {
    return this.decoder.decode();
  }
}

// `cllm serve`'s HTTP server: OpenAI's chat/completions, completions and models endpoints, and /health, on
// Node's http module. Requests take turns on one context (queue.ts); a client that goes away cancels its
// generation at the next step. Whatever a client sends, it gets an OpenAI-shaped answer and the server
// keeps serving; no stack trace ever reaches it.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import type { Model } from '../engine/model.js';
import { ApiError } from './api-error.js';
import { runCompletion, type CompletionOutcome, type Decoding } from './completion.js';
import { parseCompletionRequest } from './openai-request.js';
import { RequestQueue } from './queue.js';
import { Sequence } from '../engine/sequence.js';

export const MAX_BODY_BYTES = 1 << 20;

export interface ServerSettings {
  model: Model;
  context: Context;
  /** The model's id in /v1/models and in responses. */
  modelId: string;
  decoding: Decoding;
  apiKey?: string;
  /** Requests that may wait for their turn; more get a 503. */
  queueLimit: number;
  log: (line: string) => void;
}

export interface CllmServer {
  server: Server;
  /** Stops accepting requests, turns the waiting ones away, and resolves once the running one has finished. */
  shutdown(): Promise<void>;
}

export function createCllmServer(settings: ServerSettings): CllmServer {
  const queue = new RequestQueue(settings.queueLimit);
  // One sequence on the one context, reset for each request in its turn.
  const sequence = new Sequence(settings.context);
  const closing = new AbortController();
  const inFlight = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    const started = performance.now();
    // While shutting down, every answer closes its connection, so that keep-alive clients let go.
    if (closing.signal.aborted) res.setHeader('Connection', 'close');
    const work = handle(req, res, settings, queue, sequence, closing.signal)
      .catch((err: unknown) => fail(res, err instanceof ApiError ? err : internal(err, settings)))
      .then((note) => settings.log(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - started).toFixed(0)} ms${note ? ` ${note.split('\n')[0]}` : ''}`));
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  // A client that sends its request too slowly is cut off instead of holding a connection for ever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return {
    server,
    async shutdown() {
      closing.abort(new ApiError(503, 'the server is shutting down'));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.all(inFlight);
      // What is left is idle keep-alive connections, and clients that never finished sending a request.
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Handles one request; returns a note for the log line. */
async function handle(req: IncomingMessage, res: ServerResponse, settings: ServerSettings, queue: RequestQueue, sequence: Sequence, closing: AbortSignal): Promise<string | void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
  if (path === '/health') return json(res, 200, { status: 'ok' });
  const routes: Record<string, string> = { '/v1/models': 'GET', '/v1/chat/completions': 'POST', '/v1/completions': 'POST' };
  if (!routes[path]) throw new ApiError(404, `no route ${req.method} ${path}: cllm serves /v1/chat/completions, /v1/completions, /v1/models and /health`);
  if (settings.apiKey !== undefined && !authorized(req, settings.apiKey)) throw new ApiError(401, 'a valid API key is needed: Authorization: Bearer KEY');
  if (req.method !== routes[path]) throw new ApiError(405, `${path} takes ${routes[path]}, not ${req.method}`);
  if (path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: settings.modelId, object: 'model', created: 0, owned_by: 'cllm' }] });
  if (closing.aborted) throw new ApiError(503, 'the server is shutting down');

  const chat = path === '/v1/chat/completions';
  const request = parseCompletionRequest(await readJson(req), chat);
  const cancelled = new AbortController();
  // A client that goes away stops its generation at the next step, or leaves the queue.
  res.on('close', () => {
    if (!res.writableFinished) cancelled.abort();
  });
  const id = `${chat ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: chat ? 'chat.completion' : 'text_completion', created, model: settings.modelId };
  const chunk = (delta: { role?: string; content?: string }, finishReason: string | null = null) =>
    chat
      ? { ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] }
      : { ...base, choices: [{ index: 0, text: delta.content ?? '', logprobs: null, finish_reason: finishReason }] };

  // Waiting requests leave the queue when their client goes or the server shuts down; a running one finishes.
  const waiting = new AbortController();
  const leave = () => waiting.abort(closing.reason);
  closing.addEventListener('abort', leave, { once: true });
  cancelled.signal.addEventListener('abort', () => waiting.abort(), { once: true });
  let outcome: CompletionOutcome;
  try {
    outcome = await queue.run(() => {
      let first = true;
      const start = () => {
        if (!request.stream) return;
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        if (chat) event(res, chunk({ role: 'assistant', content: '' }));
      };
      return runCompletion(settings.model, sequence, request, settings.decoding, cancelled.signal, start, (text) => {
        if (request.stream) event(res, chunk({ content: text }), first);
        first = false;
      });
    }, waiting.signal);
  } catch (err) {
    if (err instanceof CllmError) throw new ApiError(400, err.message.split('\n')[0]);
    throw err;
  } finally {
    closing.removeEventListener('abort', leave);
  }
  if (cancelled.signal.aborted) return `cancelled after ${outcome.completionTokens} tokens: the client went away`;
  const usage = { prompt_tokens: outcome.promptTokens, completion_tokens: outcome.completionTokens, total_tokens: outcome.promptTokens + outcome.completionTokens };
  const s = outcome.stats;
  const cllm = { decoder: s.decoder, steps: s.steps, tokens_per_step: s.tokensPerStep, tokens_per_second: s.tokensPerSecond, sources: s.sources, prefill_ms: s.prefillMs, decode_ms: s.decodeMs, seed: s.sampling.seed };
  const note = `${outcome.completionTokens} tokens, ${s.tokensPerStep.toFixed(2)} a step`;
  if (request.stream) {
    event(res, { ...chunk({}, outcome.finishReason), ...(request.includeUsage ? {} : { cllm }) });
    if (request.includeUsage) event(res, { ...base, object: chat ? 'chat.completion.chunk' : 'text_completion', choices: [], usage, cllm });
    res.end('data: [DONE]\n\n');
    return note;
  }
  const choice = chat ? { index: 0, message: { role: 'assistant', content: outcome.text }, logprobs: null, finish_reason: outcome.finishReason } : { index: 0, text: outcome.text, logprobs: null, finish_reason: outcome.finishReason };
  json(res, 200, { ...base, choices: [choice], usage, cllm });
  return note;
}

/** Compares digests, so that neither the key nor its length shows in how long the answer takes. */
function authorized(req: IncomingMessage, key: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(/^bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? ''), digest(key));
}

/**
 * The body as JSON. Past the limit the rest is read and dropped, so that the client, still sending, gets its
 * 413 instead of a broken pipe; past 16 times the limit the connection is cut.
 */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (size > 16 * MAX_BODY_BYTES) req.destroy();
    });
    req.on('error', () => reject(new ApiError(400, 'the request body was cut off')));
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return reject(new ApiError(413, `the request body is over ${MAX_BODY_BYTES} bytes`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new ApiError(400, 'the request body is not valid JSON'));
      }
    });
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * Node sends a response's writes on its next tick, and a fast model decodes on the JavaScript thread, which
 * gets a turn every 15 ms: `now` sends at once (the first token, for the time to first token); the rest go
 * out together at each turn, since a send per token would cost a small model more than its tokens.
 */
function event(res: ServerResponse, body: unknown, now = false): void {
  if (res.writableEnded) return;
  res.write(`data: ${JSON.stringify(body)}\n\n`);
  if (now) res.socket?.uncork();
}

/** The answer to an error: an OpenAI error object, or, once a stream has begun, an error event and its end. */
function fail(res: ServerResponse, err: ApiError): string {
  if (res.headersSent) {
    if (!res.writableEnded) res.end(`data: ${err.body()}\n\ndata: [DONE]\n\n`);
  } else {
    // A body left unread (too large) is not waited for: the connection closes after the answer.
    res.writeHead(err.status, { 'Content-Type': 'application/json', ...(err.status === 413 ? { Connection: 'close' } : {}) });
    res.end(err.body());
  }
  return err.message;
}

function internal(err: unknown, settings: ServerSettings): ApiError {
  settings.log(`internal error: ${(err as Error)?.message?.split('\n')[0] ?? String(err)}`);
  return new ApiError(500, 'internal error: see the server log', null, 'server_error');
}

// The body of POST /v1/chat/completions and /v1/completions, checked field by field: a wrong type or value
// is a 400 naming the field. Fields cllm does not know are ignored, as OpenAI's API ignores them.
import type { ChatMessage } from '../engine/model.js';
import { samplingRange, type SamplingOptions } from '../engine/sampling.js';
import { ApiError } from './api-error.js';

export interface CompletionRequest {
  /** Chat messages, rendered through the model's template; or a plain prompt, continued as it is. */
  input: { messages: ChatMessage[] } | { prompt: string };
  maxTokens?: number;
  /** Only the settings the request gives; the rest take llama.cpp's defaults, as `cllm run`. */
  sampling: Partial<SamplingOptions>;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
}

type Json = Record<string, unknown>;

function number(body: Json, field: string, key: keyof SamplingOptions | undefined, integer = false): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new ApiError(400, `${field} must be ${integer ? 'an integer' : 'a number'}`, field);
  }
  if (key && !samplingRange(key).check(value)) throw new ApiError(400, `${field} must be ${samplingRange(key).what}`, field);
  return value;
}

function messagesOf(body: Json): ChatMessage[] {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new ApiError(400, 'messages must be a non-empty array', 'messages');
  return messages.map((m: unknown, i) => {
    const message = m as Json;
    if (typeof message !== 'object' || message === null || typeof message.role !== 'string') throw new ApiError(400, `messages[${i}] must be an object with a role`, `messages[${i}]`);
    return { role: message.role, content: contentOf(message.content, i) };
  });
}

/** A message's content: a string, or OpenAI's array of parts, of which cllm reads the text ones. */
function contentOf(content: unknown, i: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content) && content.every((p) => typeof p === 'object' && p !== null && typeof (p as Json).type === 'string')) {
    const parts = content as Json[];
    const other = parts.find((p) => p.type !== 'text');
    if (other) throw new ApiError(400, `messages[${i}].content: parts of type ${String(other.type)} are not supported by a text model`, `messages[${i}].content`);
    return parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
  }
  throw new ApiError(400, `messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`);
}

function stopOf(body: Json): string[] {
  const stop = body.stop;
  if (stop === undefined || stop === null) return [];
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new ApiError(400, 'stop must be a non-empty string or an array of up to 4 of them', 'stop');
  }
  return list;
}

export function parseCompletionRequest(body: unknown, chat: boolean): CompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object');
  const b = body as Json;
  let input: CompletionRequest['input'];
  if (chat) {
    input = { messages: messagesOf(b) };
  } else {
    const prompt = Array.isArray(b.prompt) && b.prompt.length === 1 ? b.prompt[0] : b.prompt;
    if (typeof prompt !== 'string') throw new ApiError(400, 'prompt must be a string (one prompt a request)', 'prompt');
    input = { prompt };
  }
  const n = number(b, 'n', undefined, true);
  if (n !== undefined && n !== 1) throw new ApiError(400, 'n must be 1: cllm returns one choice a request', 'n');
  const maxTokens = number(b, 'max_completion_tokens', undefined, true) ?? number(b, 'max_tokens', undefined, true);
  if (maxTokens !== undefined && maxTokens < 1) throw new ApiError(400, 'max_tokens must be at least 1', b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw new ApiError(400, 'stream must be a boolean', 'stream');
  const streamOptions = b.stream_options as Json | undefined;
  const sampling: Partial<SamplingOptions> = {};
  const set = (key: keyof SamplingOptions, value: number | undefined) => {
    if (value !== undefined) sampling[key] = value;
  };
  set('temperature', number(b, 'temperature', 'temperature'));
  set('topP', number(b, 'top_p', 'topP'));
  set('topK', number(b, 'top_k', 'topK', true));
  set('minP', number(b, 'min_p', 'minP'));
  set('repeatPenalty', number(b, 'repeat_penalty', 'repeatPenalty'));
  set('presencePenalty', number(b, 'presence_penalty', 'presencePenalty'));
  set('frequencyPenalty', number(b, 'frequency_penalty', 'frequencyPenalty'));
  set('seed', number(b, 'seed', 'seed', true));
  return { input, maxTokens, sampling, stop: stopOf(b), stream: b.stream === true, includeUsage: streamOptions?.include_usage === true };
}

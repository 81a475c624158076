// One request's generation: its prompt as tokens, decoding with the server's decoder, stop strings cut out
// of the text (and held back while they may still be forming), and OpenAI's finish reason.
import { generate, generationStats, type DecoderName, type GenerationStats } from '../engine/generate.js';
import type { Model } from '../engine/model.js';
import { samplingSettings, LLAMA_CPP_SAMPLING, randomSeed } from '../engine/sampling.js';
import type { Sequence } from '../engine/sequence.js';
import { promptTokens } from '../cli/prompt-tokens.js';
import type { CompletionRequest } from './openai-request.js';

export interface Decoding {
  decoder: DecoderName;
  block: number;
}

export interface CompletionOutcome {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
  stats: GenerationStats;
}

/**
 * Generates the request's answer. `onStart` runs once the prompt is in the cache, so that a prompt that
 * cannot be run (too long, a failing chat template) is an error before any answer has begun.
 */
export async function runCompletion(model: Model, sequence: Sequence, request: CompletionRequest, decoding: Decoding, signal: AbortSignal, onStart: () => void, onText: (text: string) => void): Promise<CompletionOutcome> {
  const prompt = 'messages' in request.input ? promptTokens(model, request.input.messages) : promptTokens(model, [{ role: 'user', content: request.input.prompt }], { raw: true });
  // As `cllm run`: llama.cpp's sampling defaults for what the request leaves out, and a random seed.
  const sampling = samplingSettings({ ...LLAMA_CPP_SAMPLING, seed: randomSeed(), ...request.sampling });
  sequence.reset();
  const prefillMs = await sequence.append(prompt);
  onStart();

  const stopped = new AbortController();
  const stream = model.textStream();
  const longestStop = Math.max(0, ...request.stop.map((s) => s.length));
  let text = '';
  let sent = 0;
  let cut: number | undefined;
  let counted = 0;
  const send = (end: number) => {
    // Never half of a surrogate pair (an emoji): clients decode each chunk on its own.
    if (end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1] ?? '')) end--;
    if (end > sent) onText(text.slice(sent, end));
    sent = Math.max(sent, end);
  };
  const append = (piece: string) => {
    if (cut !== undefined) return;
    text += piece;
    const from = Math.max(0, sent - longestStop);
    const found = request.stop.map((s) => text.indexOf(s, from)).filter((i) => i >= 0);
    if (found.length) {
      cut = Math.min(...found);
      stopped.abort();
    }
  };
  // A stop string may be forming at the end: what could be its start is held back.
  const sendSafe = () => send(cut ?? text.length - Math.max(0, longestStop - 1));
  const result = await generate(sequence, {
    decoder: decoding.decoder,
    block: decoding.block,
    maxTokens: request.maxTokens ?? Math.max(1, sequence.evaluator.size - prompt.length),
    sampling,
    signal: AbortSignal.any([signal, stopped.signal]),
    // Token by token, so that the usage counts the tokens up to a stop string, not the rest of its step;
    // the text goes out a step at a time, one event each.
    onTokens: (tokens) => {
      for (const token of tokens) {
        if (cut !== undefined) break;
        if (!model.isEndOfGeneration(token)) counted++;
        append(stream.push(token));
      }
      sendSafe();
    },
  });
  append(stream.flush());
  send(cut ?? text.length);
  const finishReason = cut === undefined && (result.stopReason === 'length' || result.stopReason === 'context') ? 'length' : 'stop';
  const stats = generationStats(result, { decoder: decoding.decoder, block: decoding.block, promptTokens: prompt.length, prefillMs });
  return { text: text.slice(0, cut), finishReason, promptTokens: prompt.length, completionTokens: counted, stats };
}

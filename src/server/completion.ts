// One request's generation: its prompt as tokens, decoding with the server's decoder, stop strings cut out
// of the text (and held back while they may still be forming), and OpenAI's finish reason.
import { complete, type DecoderName, type GenerationStats } from '../engine/generate.js';
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

export async function runCompletion(model: Model, sequence: Sequence, request: CompletionRequest, decoding: Decoding, signal: AbortSignal, onText: (text: string) => void): Promise<CompletionOutcome> {
  const prompt = 'messages' in request.input ? promptTokens(model, request.input.messages) : promptTokens(model, [{ role: 'user', content: request.input.prompt }], { raw: true });
  // As `cllm run`: llama.cpp's sampling defaults for what the request leaves out, and a random seed.
  const sampling = samplingSettings({ ...LLAMA_CPP_SAMPLING, seed: randomSeed(), ...request.sampling });
  const stopped = new AbortController();
  const stop = AbortSignal.any([signal, stopped.signal]);
  const stream = model.textStream();
  const longestStop = Math.max(0, ...request.stop.map((s) => s.length));
  let text = '';
  let sent = 0;
  let cut: number | undefined;
  const send = (end: number) => {
    if (end > sent) onText(text.slice(sent, end));
    sent = Math.max(sent, end);
  };
  const take = (piece: string) => {
    if (cut !== undefined) return;
    text += piece;
    const from = Math.max(0, sent - longestStop);
    const found = request.stop.map((s) => text.indexOf(s, from)).filter((i) => i >= 0);
    if (found.length) {
      cut = Math.min(...found);
      send(cut);
      stopped.abort();
      return;
    }
    // A stop string may be forming at the end: hold back what could be its start.
    send(text.length - Math.max(0, longestStop - 1));
  };
  sequence.reset();
  const { result, stats } = await complete(sequence, prompt, {
    decoder: decoding.decoder,
    block: decoding.block,
    maxTokens: request.maxTokens ?? Math.max(1, sequence.evaluator.size - prompt.length),
    sampling,
    signal: stop,
    onTokens: (tokens) => take(tokens.map((t) => stream.push(t)).join('')),
  });
  take(stream.flush());
  if (cut === undefined) send(text.length);
  const finishReason = cut === undefined && (result.stopReason === 'length' || result.stopReason === 'context') ? 'length' : 'stop';
  return { text: text.slice(0, cut), finishReason, promptTokens: prompt.length, completionTokens: result.tokens.length, stats };
}

// A prompt as tokens: through the model's chat template where it has one, else plain text.
import type { ChatMessage, Model } from '../engine/model.js';

export function useTemplate(model: Model, flags: { raw?: boolean }): boolean {
  return model.hasChatTemplate && !flags.raw;
}

/** Tokens of a prompt: through the chat template where the model has one (and not --raw), else plain text, where a system message has no place. */
export function promptTokens(model: Model, messages: ChatMessage[], flags: { raw?: boolean } = {}): number[] {
  if (!useTemplate(model, flags)) return Array.from(model.tokenize(messages.filter((m) => m.role !== 'system').map((m) => m.content).join('\n')));
  return withoutDoubleBos(model, model.tokenize(model.applyChatTemplate(messages), { parseSpecial: true }));
}

/** Templates that write the BOS text themselves would get a second BOS from the tokenizer. */
export function withoutDoubleBos(model: Model, tokens: Int32Array): number[] {
  const bos = model.info.bos;
  return Array.from(tokens[0] === bos && tokens[1] === bos ? tokens.subarray(1) : tokens);
}

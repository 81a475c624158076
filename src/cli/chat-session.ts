// One conversation of `cllm run`'s chat, held in one context: its messages, the template text the KV cache
// already holds (so that a turn evaluates only what it adds), and its running totals.
import { basename } from 'node:path';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import { generate, generationStats, type GenerateResult, type GenerationStats } from '../engine/generate.js';
import type { ChatMessage, Model } from '../engine/model.js';
import { Sequence } from '../engine/sequence.js';
import { blockSize, generateOptions, statsLine, type RunFlags } from './generation.js';
import { useTemplate, withoutDoubleBos } from './prompt-tokens.js';

export class ChatSession {
  /** Why the chat is plain completion (no template, --raw, or a template that fails); undefined when templated. */
  readonly plainBecause: string | undefined;
  private readonly system: ChatMessage[];
  private readonly sequence: Sequence;
  private history: ChatMessage[];
  private heldText = '';
  private lastStats: GenerationStats | undefined;
  private readonly totals = { replies: 0, tokens: 0, steps: 0, decodeMs: 0 };

  constructor(
    private readonly model: Model,
    private readonly context: Context,
    private readonly flags: RunFlags,
  ) {
    this.system = flags.system ? [{ role: 'system', content: flags.system }] : [];
    this.history = [...this.system];
    this.sequence = new Sequence(context);
    if (!useTemplate(model, flags)) this.plainBecause = model.hasChatTemplate ? '--raw' : `${basename(model.info.path)} has no chat template`;
    else this.plainBecause = templateError(model, this.system);
  }

  reset(): void {
    this.sequence.reset();
    this.history = [...this.system];
    this.heldText = '';
  }

  /** The last reply's statistics and the session's, for /stats. */
  stats(): string {
    const { replies, tokens, steps, decodeMs } = this.totals;
    const perStep = steps ? (tokens / steps).toFixed(2) : '0';
    const perSecond = decodeMs ? ((tokens * 1000) / decodeMs).toFixed(1) : '0';
    const session = `session: ${replies} ${replies === 1 ? 'reply' : 'replies'}, ${tokens} tokens, ${perStep} tokens/step, ${perSecond} tok/s, ${this.sequence.position}/${this.context.size} context positions used`;
    return this.lastStats ? `last reply: ${statsLine(this.lastStats)}\n${session}` : session;
  }

  /** Generates the reply to `input`, streaming its text to `write`; `signal` stops it, keeping what came. */
  async reply(input: string, signal: AbortSignal, write: (text: string) => void): Promise<{ result: GenerateResult; stats: GenerationStats }> {
    const { tokens, prefillMs } = await this.appendTurn(input);
    const stream = this.model.textStream();
    const held = this.model.textStream({ renderSpecial: true });
    let reply = '';
    try {
      const result = await generate(
        this.sequence,
        generateOptions(this.flags, {
          signal,
          onTokens: (generated) => {
            const piece = generated.map((t) => stream.push(t)).join('');
            reply += piece;
            this.heldText += generated.map((t) => held.push(t)).join('');
            write(piece);
          },
        }),
      );
      const stats = generationStats(result, { decoder: this.flags.decoder, block: blockSize(this.flags), promptTokens: tokens.length, prefillMs });
      reply += stream.flush();
      this.lastStats = stats;
      this.totals.replies++;
      this.totals.tokens += stats.generatedTokens;
      this.totals.steps += stats.steps;
      this.totals.decodeMs += stats.decodeMs;
      return { result, stats };
    } finally {
      if (!this.plainBecause) this.history.push({ role: 'assistant', content: reply });
    }
  }

  /** Puts the user's turn in the cache; a turn that fails before it is there leaves the conversation as it was. */
  private async appendTurn(input: string): Promise<{ tokens: number[]; prefillMs: number }> {
    if (this.plainBecause) {
      // Plain completion: each line starts a new text.
      this.sequence.reset();
      const tokens = Array.from(this.model.tokenize(input));
      return { tokens, prefillMs: await this.sequence.append(tokens) };
    }
    const full = this.model.applyChatTemplate([...this.history, { role: 'user', content: input }]);
    let tokens: number[];
    if (this.heldText && full.startsWith(this.heldText)) {
      tokens = Array.from(this.model.tokenize(full.slice(this.heldText.length), { addBos: false, parseSpecial: true }));
    } else {
      this.sequence.reset();
      this.heldText = '';
      tokens = withoutDoubleBos(this.model, this.model.tokenize(full, { parseSpecial: true }));
    }
    const prefillMs = await this.sequence.append(tokens);
    this.history.push({ role: 'user', content: input });
    this.heldText = full;
    return { tokens, prefillMs };
  }
}

/** A template that fails (or breaks its limits) on a first message leaves the chat in plain completion. */
function templateError(model: Model, system: ChatMessage[]): string | undefined {
  try {
    model.applyChatTemplate([...system, { role: 'user', content: 'hello' }]);
    return undefined;
  } catch (err) {
    if (!(err instanceof CllmError)) throw err;
    return err.message;
  }
}

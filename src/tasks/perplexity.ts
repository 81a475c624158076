// Held-out loss: the mean negative log-likelihood of a text, in nats per token, through llama.cpp. It is how
// the quality of a fine-tuned model is compared with its base.

export interface Scorer {
  readonly size: number;
  logProbabilities(tokens: ArrayLike<number>, start: number, targets: ArrayLike<number>): Promise<Float32Array>;
  rollback(position: number): void;
}

export interface TextLoss {
  /** Sum of -log p(token) over every scored token. */
  nats: number;
  /** Tokens scored: every token of every document but its first (BOS). */
  tokens: number;
  documents: number;
}

/**
 * Scores one tokenized document (BOS first): every token after the first is predicted once. A document longer
 * than the context is cut into windows of the context size, each scored from an empty cache; the first token
 * of a window is fed as input, having been predicted at the end of the window before.
 */
export async function documentLoss(scorer: Scorer, tokens: readonly number[]): Promise<{ nats: number; tokens: number }> {
  let nats = 0;
  let scored = 0;
  for (let start = 0; start < tokens.length - 1; start += scorer.size) {
    const inputs = tokens.slice(start, Math.min(start + scorer.size, tokens.length - 1));
    const targets = tokens.slice(start + 1, start + 1 + inputs.length);
    scorer.rollback(0);
    const logprobs = await scorer.logProbabilities(inputs, 0, targets);
    for (const lp of logprobs) nats -= lp;
    scored += logprobs.length;
  }
  scorer.rollback(0);
  return { nats, tokens: scored };
}

/** Splits a text file into documents at the ASCII record separator (0x1E), as ../shared/data/python-heldout.txt is made. */
export function splitDocuments(text: string): string[] {
  return text.split('\x1e').filter((doc) => doc.trim().length > 0);
}

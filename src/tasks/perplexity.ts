// Held-out loss: the mean negative log-likelihood of a text, in nats per token, through llama.cpp. It is how
// the quality of a fine-tuned model is compared with its base.

export interface Scorer {
  readonly size: number;
  logProbabilities(tokens: ArrayLike<number>, start: number, targets: ArrayLike<number>): Promise<Float32Array>;
  rollback(position: number): void;
}

/**
 * Where the position buckets start. A target's position is the number of tokens before it in its window
 * (BOS is position 0, so a document's first target is at 1): how much context it was predicted from. Loss
 * falls as context grows, so a change to a model that only hurts short contexts is diluted in one mean.
 */
export const BUCKET_STARTS = [0, 64, 256] as const;

export interface Loss {
  /** Sum of -log p(token) over every scored token. */
  nats: number;
  /** Tokens scored: every token of every document but its first (BOS). */
  tokens: number;
}

export interface PositionBucket extends Loss {
  from: number;
  /** Exclusive; null for the last bucket, which has no end. */
  to: number | null;
}

export interface TextLoss extends Loss {
  documents: number;
  /** The same nats and tokens, split by the target's position in its window, one bucket per BUCKET_STARTS. */
  buckets: PositionBucket[];
}

export function emptyBuckets(): PositionBucket[] {
  return BUCKET_STARTS.map((from, i) => ({ from, to: BUCKET_STARTS[i + 1] ?? null, nats: 0, tokens: 0 }));
}

/** Adds b's nats and tokens into a, bucket by bucket. */
export function addBuckets(a: PositionBucket[], b: readonly PositionBucket[]): void {
  for (const [i, bucket] of b.entries()) {
    a[i].nats += bucket.nats;
    a[i].tokens += bucket.tokens;
  }
}

/**
 * Scores one tokenized document (BOS first): every token after the first is predicted once. A document longer
 * than the context is cut into windows of the context size, each scored from an empty cache; the first token
 * of a window is fed as input, having been predicted at the end of the window before.
 */
export async function documentLoss(scorer: Scorer, tokens: readonly number[]): Promise<Omit<TextLoss, 'documents'>> {
  let nats = 0;
  let scored = 0;
  const buckets = emptyBuckets();
  for (let start = 0; start < tokens.length - 1; start += scorer.size) {
    const inputs = tokens.slice(start, Math.min(start + scorer.size, tokens.length - 1));
    const targets = tokens.slice(start + 1, start + 1 + inputs.length);
    scorer.rollback(0);
    const logprobs = await scorer.logProbabilities(inputs, 0, targets);
    let bucket = 0;
    for (const [i, lp] of logprobs.entries()) {
      // targets[i] is predicted from the i + 1 inputs before it.
      while (bucket + 1 < buckets.length && i + 1 >= buckets[bucket + 1].from) bucket++;
      nats -= lp;
      buckets[bucket].nats -= lp;
      buckets[bucket].tokens++;
    }
    scored += logprobs.length;
  }
  scorer.rollback(0);
  return { nats, tokens: scored, buckets };
}

/** Splits a text file into documents at the ASCII record separator (0x1E), as ../shared/data/python-heldout.txt is made. */
export function splitDocuments(text: string): string[] {
  return text.split('\x1e').filter((doc) => doc.trim().length > 0);
}

// Draft fill policies: what a Jacobi step guesses for the positions it has no earlier guess for. The
// guesses never change the output, only how many tokens each step accepts.

/** Returns `count` guessed tokens, given every committed token so far (prompt and generated text). */
export type DraftFill = (committed: readonly number[], count: number) => number[];

/** A seeded PRNG (mulberry32), so that draws, and so runs, are reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The CLLM reference policy: tokens drawn at random from the prompt and the text so far. */
export function drawFromText(seed = 0): DraftFill {
  const random = seededRandom(seed);
  return (committed, count) => Array.from({ length: count }, () => committed[Math.floor(random() * committed.length)]);
}

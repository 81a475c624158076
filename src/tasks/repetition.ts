// Whether an output is a loop. Small models' greedy output often repeats itself, and a CLLM's Jacobi decoding
// converges at once on a repeat, so tokens per step measured on loops overstates what it does on real text.

/** The span length that counts as a repeat: long enough that code's common idioms rarely fill it. */
const SPAN = 16;

/**
 * An output is degenerate when more than half of its tokens from the 16th on (index 15, the first that can
 * end a 16-token span) complete a 16-token span that already occurred earlier in it: index i >= 15 is a
 * repeat if tokens[i-15..i] equals tokens[j-15..j] for some j < i (the two spans may overlap). Outputs
 * shorter than 32 tokens are never degenerate: too few spans to judge.
 */
export function isDegenerate(tokens: readonly number[]): boolean {
  if (tokens.length < 2 * SPAN) return false;
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = SPAN - 1; i < tokens.length; i++) {
    const span = tokens.slice(i - SPAN + 1, i + 1).join(',');
    if (seen.has(span)) repeats++;
    else seen.add(span);
  }
  return repeats > (tokens.length - SPAN + 1) / 2;
}

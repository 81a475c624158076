// Prompt lookup: if the last n tokens occurred before, in the prompt or the text so far, guess that what
// followed them then follows again. Code, quotes and edits of the prompt repeat a lot.
import type { DraftTree } from '../draft-tree.js';
import type { DraftSource, Rate } from './source.js';

export class PromptLookup implements DraftSource {
  readonly name = 'ngram';
  /** follows[n-1]: each n-gram seen, mapped to the index of the token that followed its latest occurrence. */
  private readonly follows: Map<string, number>[];
  private indexed = 0;

  constructor(
    private readonly longestMatch = 3,
    private readonly longestGuess = 12,
  ) {
    this.follows = Array.from({ length: longestMatch }, () => new Map());
  }

  propose(tree: DraftTree, committed: readonly number[], rate: Rate, limit: number): void {
    this.index(committed);
    const end = committed.length;
    let previous = -1;
    for (let n = Math.min(this.longestMatch, end); n >= 1; n--) {
      const at = this.follows[n - 1].get(committed.slice(end - n, end).join());
      if (at === undefined || at === previous) continue;
      previous = at;
      // Once a copy has started right, it tends to go on: the rest of the chain has a rate of its own.
      const guess = committed.slice(at, Math.min(end, at + Math.min(limit, this.longestGuess)));
      tree.addChain(0, guess, (depth) => (depth ? `ngram${n}+` : `ngram${n}`), rate, this.name);
    }
  }

  observe(): void {}

  // The n-grams that end before the last token: the suffix being looked up must not find itself.
  private index(committed: readonly number[]): void {
    for (let end = this.indexed + 1; end < committed.length; end++) {
      for (let n = 1; n <= this.longestMatch && n <= end; n++) this.follows[n - 1].set(committed.slice(end - n, end).join(), end);
    }
    this.indexed = Math.max(this.indexed, committed.length - 1);
  }
}

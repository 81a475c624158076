// Suffix matching, as in SAM decoding (Hu et al. 2024): the longest suffix of the text that occurred
// before, however long, and what followed its latest occurrence. A suffix automaton over the committed
// tokens keeps it up to date as tokens arrive, with no search: a long match predicts far better than a
// short n-gram, and the planner learns by how much from the match length in the rate key.
import type { DraftTree } from '../draft-tree.js';
import type { DraftSource, Rate } from './source.js';

export class SuffixMatch implements DraftSource {
  readonly name = 'suffix-match';
  // The automaton, a state an index (0: the empty string). A state stands for the substrings that end
  // at the same set of positions; its link is the state of the longest suffix that ends at more of them.
  /** The length of the state's longest substring. */
  private longest: number[] = [];
  private link: number[] = [];
  private next: Map<number, number>[] = [];
  /** The latest position where the state's substrings end, and the latest before that one. */
  private latest: number[] = [];
  private before: number[] = [];
  /** The state of all the committed tokens. */
  private last = 0;
  private indexed = 0;
  private lastIndexed = -1;
  /** The tokens there were at the first proposal: a match in the prompt is a quote, not a loop. */
  private promptLength = 0;

  constructor(
    private readonly longestGuess = 16,
    /** Shorter suffixes, one suffix link up each, whose latest occurrence may have gone another way. */
    private readonly alternatives = 2,
  ) {
    this.reset();
  }

  propose(tree: DraftTree, committed: readonly number[], rate: Rate, limit: number): void {
    this.index(committed);
    const end = committed.length;
    if (limit <= 0) return;
    const proposed = new Set<string>();
    // The last state ends only at the end; its link is the longest suffix that also ended before.
    let state = this.link[this.last];
    for (let hop = 0; hop <= this.alternatives && state > 0; hop++, state = this.link[state]) {
      // A shorter suffix that occurred later may go on like the longer one for a few tokens and part
      // further on: the tree merges what the chains have in common.
      const at = this.before[state] + 1;
      const guess = committed.slice(at, Math.min(end, at + Math.min(limit, this.longestGuess)));
      const text = guess.join();
      if (proposed.has(text)) continue;
      proposed.add(text);
      const key = `suffix${bucket(this.longest[state])}${at <= this.promptLength ? 'p' : ''}`;
      // Once a copy has started right, it tends to go on: the rest of the chain has a rate of its own.
      tree.addChain(0, guess, (depth) => (depth ? `${key}+` : key), rate, this.name);
    }
  }

  observe(): void {}

  private index(committed: readonly number[]): void {
    // A new generation: what was indexed is no longer the start of the text.
    if (committed.length < this.indexed || (this.indexed > 0 && committed[this.indexed - 1] !== this.lastIndexed)) this.reset();
    if (this.indexed === 0) this.promptLength = committed.length;
    for (let i = this.indexed; i < committed.length; i++) this.extend(committed[i], i);
    this.indexed = committed.length;
    this.lastIndexed = committed[committed.length - 1];
  }

  private reset(): void {
    this.longest = [0];
    this.link = [-1];
    this.next = [new Map()];
    this.latest = [-1];
    this.before = [-1];
    this.last = 0;
    this.indexed = 0;
  }

  private addState(length: number, link: number, next: Map<number, number>, latest: number): number {
    this.link.push(link);
    this.next.push(next);
    this.latest.push(latest);
    this.before.push(-1);
    return this.longest.push(length) - 1;
  }

  /** The standard online construction, and every suffix of the text now ends at `position` too. */
  private extend(token: number, position: number): void {
    const cur = this.addState(this.longest[this.last] + 1, 0, new Map(), -1);
    let p = this.last;
    for (; p >= 0 && !this.next[p].has(token); p = this.link[p]) this.next[p].set(token, cur);
    if (p >= 0) {
      const q = this.next[p].get(token)!;
      if (this.longest[q] === this.longest[p] + 1) this.link[cur] = q;
      else {
        const clone = this.addState(this.longest[p] + 1, this.link[q], new Map(this.next[q]), this.latest[q]);
        for (; p >= 0 && this.next[p].get(token) === q; p = this.link[p]) this.next[p].set(token, clone);
        this.link[q] = this.link[cur] = clone;
      }
    }
    this.last = cur;
    // As long as the longest repeated suffix: the price of the latest occurrence rather than the first.
    for (let s = cur; s > 0; s = this.link[s]) {
      this.before[s] = this.latest[s];
      this.latest[s] = position;
    }
  }
}

/** Match lengths that share a rate key: past a few tokens, one more says little. */
function bucket(length: number): string {
  if (length >= 16) return '16+';
  if (length >= 8) return '8-15';
  if (length >= 4) return '4-7';
  return String(length);
}

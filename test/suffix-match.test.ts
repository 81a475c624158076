// The suffix-automaton draft source: the longest earlier suffix and its latest continuation, checked
// against a brute-force search (decoding with it: test/planner.test.ts).
import { describe, expect, it } from 'vitest';
import { DraftTree } from '../src/engine/draft-tree.js';
import type { DraftSource } from '../src/engine/sources/source.js';
import { SuffixMatch } from '../src/engine/sources/suffix-match.js';

interface Chain {
  tokens: number[];
  keys: string[];
}

/** The chains a source added under the root, in the order it added them (the tree merges their common starts). */
function propose(source: DraftSource, committed: readonly number[], limit = 63): Chain[] {
  const chains: Chain[] = [];
  const tree = new (class extends DraftTree {
    addChain(parent: number, tokens: readonly number[], key: (depth: number) => string, p: (key: string) => number, name: string): number {
      chains.push({ tokens: [...tokens], keys: tokens.map((_, depth) => key(depth)) });
      return super.addChain(parent, tokens, key, p, name);
    }
  })(committed[committed.length - 1]);
  source.propose(tree, committed, () => 0.5, limit);
  return chains;
}

/** For each match length, the start of what followed its latest earlier occurrence (-1: none). */
function bruteForce(text: readonly number[]): number[] {
  const end = text.length;
  const latest = new Array<number>(end).fill(-1);
  for (let e = 1; e < end; e++) {
    let n = 0;
    while (n < e && text[e - 1 - n] === text[end - 1 - n]) n++;
    for (let m = 1; m <= n; m++) latest[m] = e;
  }
  return latest;
}

const bucket = (n: number) => (n >= 16 ? '16+' : n >= 8 ? '8-15' : n >= 4 ? '4-7' : String(n));

describe('suffix matching', () => {
  it('proposes what followed an earlier occurrence of the suffix', () => {
    expect(propose(new SuffixMatch(), [1, 2, 3, 9, 1, 2, 3])).toEqual([
      { tokens: [9, 1, 2, 3], keys: ['suffix3p', 'suffix3p+', 'suffix3p+', 'suffix3p+'] },
    ]);
  });

  it('follows the longest match first, where the last 3-gram went elsewhere, then the shorter one', () => {
    const text = [5, 6, 7, 8, 9, 40, 7, 8, 9, 41, 5, 6, 7, 8, 9];
    // The last 3-gram (7, 8, 9) was last followed by 41; the whole match (5, 6, 7, 8, 9) by 40.
    const [longest, shorter, ...rest] = propose(new SuffixMatch(), text);
    expect(longest.tokens).toEqual(text.slice(5));
    expect(longest.keys.slice(0, 2)).toEqual(['suffix4-7p', 'suffix4-7p+']);
    expect(shorter.tokens).toEqual(text.slice(9));
    expect(shorter.keys[0]).toBe('suffix3p');
    expect(rest).toEqual([]);
  });

  it('follows the latest occurrence', () => {
    expect(propose(new SuffixMatch(), [1, 2, 7, 1, 2, 8, 1, 2])[0].tokens).toEqual([8, 1, 2]);
  });

  it('proposes nothing for a suffix that occurs only at the end', () => {
    expect(propose(new SuffixMatch(), [1, 2, 3, 4])).toEqual([]);
    expect(propose(new SuffixMatch(), [1, 2, 3, 1, 2, 4])).toEqual([]);
    expect(propose(new SuffixMatch(), [7])).toEqual([]);
  });

  it('keeps within the limit and the longest guess', () => {
    const text = [1, 2, 3, 9, 1, 2, 3, 4, 5, 1, 2, 3];
    expect(propose(new SuffixMatch(), text, 2).flatMap((c) => c.tokens)).toEqual([4, 5]);
    expect(propose(new SuffixMatch(3), text)[0].tokens).toEqual([4, 5, 1]);
    expect(propose(new SuffixMatch(), text, 0)).toEqual([]);
  });

  it('tells matches in the prompt from matches in the text generated after it', () => {
    const source = new SuffixMatch();
    expect(propose(source, [1, 2, 3, 4, 5])).toEqual([]);
    expect(propose(source, [1, 2, 3, 4, 5, 7, 8, 9, 7, 8])).toEqual([
      { tokens: [9, 7, 8], keys: ['suffix2', 'suffix2+', 'suffix2+'] },
    ]);
    expect(propose(source, [1, 2, 3, 4, 5, 7, 8, 9, 7, 8, 3])).toEqual([
      { tokens: [4, 5, 7, 8, 9, 7, 8, 3], keys: ['suffix1p', ...new Array(7).fill('suffix1p+')] },
    ]);
  });

  it('starts over on a different text', () => {
    const source = new SuffixMatch();
    expect(propose(source, [1, 2, 3, 1, 2])[0].tokens).toEqual([3, 1, 2]);
    expect(propose(source, [7, 8, 7, 8, 1, 2])).toEqual([]); // same length as indexed, another last token
    expect(propose(source, [4, 5, 4])).toEqual([{ tokens: [5, 4], keys: ['suffix1p', 'suffix1p+'] }]); // shorter
  });

  it('grown token by token, proposes what a search from scratch finds', () => {
    let seed = 7;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) % 3;
    // Few distinct tokens, far apart ids, and stretches that copy earlier text: long and short matches.
    const text: number[] = [];
    while (text.length < 400) {
      if (random() === 0 && text.length > 20) {
        const from = (seed >>> 3) % (text.length - 10);
        text.push(...text.slice(from, from + 5 + (seed % 20)));
      } else text.push([3, 150_000, 77][random()]);
    }
    const grown = new SuffixMatch(8);
    for (let end = 1; end <= text.length; end += 1 + (end % 3)) {
      const committed = text.slice(0, end);
      const chains = propose(grown, committed);
      // From scratch, all of it is the prompt.
      const generated = (c: Chain) => ({ ...c, keys: c.keys.map((k) => k.replace('p', '')) });
      expect(chains.map(generated)).toEqual(propose(new SuffixMatch(8), committed).map(generated));
      const latest = bruteForce(committed);
      let longest = latest.length - 1;
      while (longest >= 0 && latest[longest] < 0) longest--;
      if (longest <= 0) {
        expect(chains).toEqual([]);
        continue;
      }
      expect(chains[0].tokens).toEqual(committed.slice(latest[longest], latest[longest] + 8));
      // Every chain continues the latest occurrence of a suffix whose length its key tells, each a different one.
      for (const { tokens, keys } of chains) {
        const lengths = latest.map((at, n) => (at >= 0 && committed.slice(at, at + 8).join() === tokens.join() ? n : 0));
        expect(lengths.some((n) => n > 0 && keys[0].replace('p', '') === `suffix${bucket(n)}`)).toBe(true);
      }
      expect(new Set(chains.map((c) => c.tokens.join())).size).toBe(chains.length);
    }
  });
});


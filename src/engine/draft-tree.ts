// A tree of guesses after the pending token, scored in one forward pass. Guesses from every draft source
// merge into one trie, so a continuation that two sources agree on is scored once.

export interface DraftNode {
  token: number;
  /** Index of the parent node; -1 for the root (the pending token). */
  parent: number;
  /** Estimated probability that the model's token after the parent (its argmax, or its sample) is this one. */
  p: number;
  /** The rate keys of the sources that proposed it (such as "suffix4-7p"), to learn their acceptance. */
  keys: string[];
  /** The source credited when the token is accepted: the first to propose it. */
  source: string;
}

export class DraftTree {
  readonly nodes: DraftNode[];
  private readonly children = new Map<number, Map<number, number>>();

  constructor(root: number) {
    this.nodes = [{ token: root, parent: -1, p: 1, keys: [], source: '' }];
  }

  get size(): number {
    return this.nodes.length;
  }

  /** The child of `parent` holding `token`, if any. */
  child(parent: number, token: number): number | undefined {
    return this.children.get(parent)?.get(token);
  }

  /** Indices of the children of `parent`. */
  childrenOf(parent: number): Iterable<number> {
    return this.children.get(parent)?.values() ?? [];
  }

  /** Adds a guess under `parent` (or merges it into an equal one) and returns its index. */
  add(parent: number, token: number, p: number, key: string, source: string): number {
    const existing = this.child(parent, token);
    if (existing !== undefined) {
      const node = this.nodes[existing];
      node.p = Math.max(node.p, p);
      if (!node.keys.includes(key)) node.keys.push(key);
      return existing;
    }
    const index = this.nodes.push({ token, parent, p, keys: [key], source }) - 1;
    let siblings = this.children.get(parent);
    if (!siblings) this.children.set(parent, (siblings = new Map()));
    siblings.set(token, index);
    return index;
  }

  /**
   * Adds a chain of guesses below `parent`, the one at each depth with the rate key `key(depth)` and the
   * probability `p(that key)`; returns its last node.
   */
  addChain(parent: number, tokens: readonly number[], key: (depth: number) => string, p: (key: string) => number, source: string): number {
    let at = parent;
    tokens.forEach((token, depth) => (at = this.add(at, token, p(key(depth)), key(depth), source)));
    return at;
  }

  /**
   * Each node's probability of being reached and accepted: the product of p along its path. At most one
   * child of a node can be right: where sources disagree and their children's p add up to more than 1, the
   * likeliest child keeps its p and the others share what is left.
   */
  pathProbabilities(): number[] {
    const best = new Array<number>(this.nodes.length).fill(0);
    const rest = new Array<number>(this.nodes.length).fill(0);
    for (const node of this.nodes) {
      if (node.parent < 0) continue;
      const top = best[node.parent];
      if (node.p > top) [best[node.parent], rest[node.parent]] = [node.p, rest[node.parent] + top];
      else rest[node.parent] += node.p;
    }
    const out = new Array<number>(this.nodes.length);
    this.nodes.forEach((node, i) => {
      if (node.parent < 0) return void (out[i] = 1);
      const { [node.parent]: top } = best;
      const others = rest[node.parent];
      const p = node.p === top || others <= 1 - top ? node.p : (node.p * (1 - top)) / others;
      out[i] = out[node.parent] * p;
    });
    return out;
  }

  /** A new tree of the given nodes (each one's parent must be among them or be the root). */
  subtree(indices: readonly number[]): DraftTree {
    const tree = new DraftTree(this.nodes[0].token);
    const moved = new Map<number, number>([[0, 0]]);
    for (const i of [...indices].sort((a, b) => a - b)) {
      if (i === 0) continue;
      const { token, parent, p, keys, source } = this.nodes[i];
      const at = tree.add(moved.get(parent)!, token, p, keys[0], source);
      tree.nodes[at].keys = [...keys];
      moved.set(i, at);
    }
    return tree;
  }
}

/** The pass to feed: the cache's missing committed tokens, then the tree, laid out for Evaluator.decode. */
export interface Layout {
  tokens: number[];
  /** Undefined when the whole pass is one chain. */
  parents?: number[];
  /** source[i]: the draft source credited with the guess at index i ('' for committed tokens). */
  source: string[];
  /** Index of the pending token (the tree's root) in the pass. */
  root: number;
  /** Indices 0..mainChain-1 are a chain: the cache keeps those entries of an accepted prefix. */
  mainChain: number;
}

/**
 * Lays a tree out after the committed tokens the cache lacks. The main chain follows the likeliest child
 * from the root, so that the path most likely to be accepted occupies the cache as one-by-one decoding
 * would; the other nodes follow in tree order, every parent before its children.
 */
export function layout(uncached: readonly number[], tree: DraftTree): Layout {
  const root = uncached.length - 1;
  if (tree.nodes.every((node, i) => node.parent === i - 1)) {
    // A chain (every step of plain and Jacobi decoding): the common case, kept cheap.
    const guesses = tree.nodes.slice(1);
    return {
      tokens: [...uncached, ...guesses.map((n) => n.token)],
      source: [...uncached.map(() => ''), ...guesses.map((n) => n.source)],
      root,
      mainChain: root + tree.size,
    };
  }
  const paths = tree.pathProbabilities();
  const kids: number[][] = tree.nodes.map(() => []);
  tree.nodes.forEach((node, i) => node.parent >= 0 && kids[node.parent].push(i));
  const main = [0];
  for (let at = 0; kids[at].length; ) {
    at = kids[at].reduce((best, k) => (paths[k] > paths[best] ? k : best));
    main.push(at);
  }
  const onMain = new Set(main);
  const order = [...main, ...tree.nodes.map((_, i) => i).filter((i) => !onMain.has(i))];
  const position = new Map(order.map((node, i) => [node, root + i]));
  const tokens = [...uncached.slice(0, -1), ...order.map((i) => tree.nodes[i].token)];
  const node = [...uncached.slice(0, -1).map(() => -1), ...order];
  const parents = tokens.map((_, i) => (i <= root ? i - 1 : position.get(tree.nodes[node[i]].parent)!));
  const source = node.map((i) => (i > 0 ? tree.nodes[i].source : ''));
  return { tokens, parents, source, root, mainChain: root + main.length };
}

/**
 * Walks the pass from the root: while some child holds the model's prediction after the current node, that
 * child is accepted. Returns the pass indices of the accepted path, root first.
 */
export function acceptedPath(pass: Layout, chosen: ArrayLike<number>): number[] {
  const path = [pass.root];
  if (!pass.parents) {
    while (path.length + pass.root < pass.tokens.length && pass.tokens[pass.root + path.length] === chosen[pass.root + path.length - 1]) path.push(pass.root + path.length);
    return path;
  }
  const childrenOf = new Map<number, number[]>();
  const parentOf = (i: number) => (pass.parents ? pass.parents[i] : i - 1);
  for (let i = pass.root + 1; i < pass.tokens.length; i++) {
    const list = childrenOf.get(parentOf(i));
    if (list) list.push(i);
    else childrenOf.set(parentOf(i), [i]);
  }
  for (;;) {
    const at = path[path.length - 1];
    const next = childrenOf.get(at)?.find((i) => pass.tokens[i] === chosen[at]);
    if (next === undefined) return path;
    path.push(next);
  }
}

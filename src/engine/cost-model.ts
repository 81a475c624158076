// What a forward pass costs against the number of tokens in it, t(n), on this model and machine. A short
// calibration when a context is first used, then every pass refines it: the cost of a pass depends on the
// position in the context, the threads, and whatever else the machine is doing.
import type { Evaluator } from './evaluator.js';

const CALIBRATION_SIZES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

export class CostModel {
  /** Smoothed milliseconds per pass, by number of tokens; only measured sizes are present. */
  private readonly ms = new Map<number, number>();

  constructor(
    measured: Iterable<[number, number]>,
    private readonly smoothing = 0.1,
  ) {
    for (const [n, ms] of measured) this.ms.set(n, ms);
  }

  /**
   * Times passes of growing size at `position` (the cache must hold exactly [0, position)) and rolls them
   * back. It stops within about `budgetMs`, or once a pass costs 8 one-token passes: sizes beyond that
   * would not pay unless nearly every guess were right, and the online estimate covers them if they do.
   */
  static async calibrate(evaluator: Evaluator, position: number, token: number, budgetMs = 250): Promise<CostModel> {
    const measured: [number, number][] = [];
    const began = performance.now();
    const time = async (n: number) => {
      const t0 = performance.now();
      await evaluator.decode(new Array(n).fill(token), position);
      const ms = performance.now() - t0;
      evaluator.rollback(position);
      return ms;
    };
    await time(1); // warm-up: the first pass allocates
    for (const n of CALIBRATION_SIZES) {
      if (position + n > evaluator.size) break;
      const ms = Math.min(await time(n), await time(n), await time(n));
      measured.push([n, ms]);
      if (performance.now() - began > budgetMs || ms > 8 * measured[0][1]) break;
    }
    return new CostModel(measured);
  }

  /** Estimated milliseconds for a pass of n tokens: interpolated, or extrapolated from the two largest sizes. */
  time(n: number): number {
    const exact = this.ms.get(n);
    if (exact !== undefined) return exact;
    const sizes = [...this.ms.keys()].sort((a, b) => a - b);
    if (sizes.length === 0) return n;
    if (sizes.length === 1) return (this.ms.get(sizes[0])! * n) / sizes[0];
    let hi = sizes.findIndex((s) => s > n);
    if (hi <= 0) hi = hi === 0 ? 1 : sizes.length - 1;
    const [a, b] = [sizes[hi - 1], sizes[hi]];
    const [ta, tb] = [this.ms.get(a)!, this.ms.get(b)!];
    return Math.max(ta + ((tb - ta) * (n - a)) / (b - a), Number.EPSILON);
  }

  /** Folds in a measured pass (unless smoothing is 0: a fixed model). */
  observe(n: number, ms: number): void {
    if (this.smoothing === 0) return;
    const before = this.ms.get(n);
    if (before === undefined) return void this.ms.set(n, ms);
    // A pass the OS delayed (a page fault, another process) must not make a size look dear for long.
    const clipped = Math.min(Math.max(ms, before / 2), before * 2);
    this.ms.set(n, before + this.smoothing * (clipped - before));
  }

  /** The measured sizes and their smoothed times, for reports. */
  table(): [number, number][] {
    return [...this.ms].sort((a, b) => a[0] - b[0]);
  }
}

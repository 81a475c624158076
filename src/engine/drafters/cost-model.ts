// What a forward pass costs against the number of tokens in it, t(n), on this model and machine: the shape
// of t from a short calibration when a context is first used, its scale from every pass since. One scale
// for all sizes follows what changes for all of them alike (the position in the context, the threads,
// whatever else the machine is doing), including sizes the planner has not chosen for a while.
import type { Evaluator } from '../evaluator.js';

const CALIBRATION_SIZES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

export class CostModel {
  /** Calibrated milliseconds by size, ascending in both; interpolated in between. */
  private readonly sizes: number[];
  private readonly ms: number[];
  private scale = 1;

  /** smoothing: how fast the scale follows measured passes; 0 fixes the model as given. */
  constructor(
    measured: Iterable<[number, number]>,
    private readonly smoothing = 0.05,
  ) {
    const sorted = [...measured].sort((a, b) => a[0] - b[0]);
    this.sizes = sorted.map(([n]) => n);
    // A larger pass never costs less: a measurement that says so was disturbed.
    let most = 0;
    this.ms = sorted.map(([, ms]) => (most = Math.max(most, ms)));
  }

  /**
   * Times passes of growing size at `position` (the cache must hold exactly [0, position)) and rolls them
   * back, the best of three for each size. It stops within about `budgetMs`, or once a pass costs 8
   * one-token passes: sizes beyond that would not pay unless nearly every guess were right.
   */
  static async calibrate(evaluator: Evaluator, position: number, token: number, budgetMs = 250): Promise<CostModel> {
    const measured: [number, number][] = [];
    const time = async (n: number) => {
      const t0 = performance.now();
      await evaluator.decode(new Array(n).fill(token), position);
      const ms = performance.now() - t0;
      evaluator.rollback(position);
      return ms;
    };
    for (let i = 0; i < 3; i++) await time(1); // warm-up: the first passes allocate and settle the threads
    const began = performance.now();
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
    return this.scale * this.calibrated(n);
  }

  /** Folds a measured pass into the scale. */
  observe(n: number, ms: number): void {
    if (this.smoothing === 0 || this.sizes.length === 0) return;
    // A pass the OS delayed (a page fault, another process) must not make every size look dear for long.
    const ratio = Math.min(Math.max(ms / this.calibrated(n), this.scale / 2), this.scale * 2);
    this.scale += this.smoothing * (ratio - this.scale);
  }

  /** The calibrated sizes and their estimated times now: what the planner believes, for tests and debugging. */
  table(): [number, number][] {
    return this.sizes.map((n) => [n, this.time(n)]);
  }

  private calibrated(n: number): number {
    const { sizes, ms } = this;
    if (sizes.length === 0) return n;
    if (sizes.length === 1) return (ms[0] * n) / sizes[0];
    let hi = sizes.findIndex((s) => s >= n);
    if (hi >= 0 && sizes[hi] === n) return ms[hi];
    if (hi <= 0) hi = hi === 0 ? 1 : sizes.length - 1;
    const [a, b, ta, tb] = [sizes[hi - 1], sizes[hi], ms[hi - 1], ms[hi]];
    return Math.max(ta + ((tb - ta) * (n - a)) / (b - a), Number.EPSILON);
  }
}

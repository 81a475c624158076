// Picks the CPU thread count at run time. With all cores, a pass is fastest on an idle machine, but when
// other processes want the cores, ggml's worker threads wait for each other at every operation while one
// of them is descheduled: a pass then runs 3x to 100x slower than on one thread (measured with busy loops
// on 2 cores; see bench/threads-under-load.sh). Every so often the other choice is tried on a few real
// passes, and kept if it is clearly faster.

export class ThreadGovernor {
  current: number;
  /** Smoothed ms of recent passes at `current`, by pass size: passes are compared with passes of their size. */
  private readonly usual = new Map<number, number>();
  private sinceTrial = 0;
  /** ms of passes between trials: soon after the start, then longer each time the other choice loses. */
  private interval = 100;
  private trial: { threads: number; passes: number; ms: number; usualMs: number } | undefined;

  constructor(
    readonly most: number,
    private readonly apply: (threads: number) => void,
  ) {
    this.current = most;
  }

  /** Records a pass of `tokens` tokens that took `ms`, and may change the thread count for the next. */
  observe(tokens: number, ms: number): void {
    if (this.most <= 1) return;
    const usual = this.usual.get(tokens);
    if (this.trial) {
      if (usual !== undefined) this.judge(ms, usual);
      return;
    }
    this.usual.set(tokens, usual === undefined ? ms : usual + 0.2 * (ms - usual));
    this.sinceTrial += ms;
    if (this.sinceTrial < this.interval) return;
    this.sinceTrial = 0;
    this.trial = { threads: this.current === this.most ? 1 : this.most, passes: 0, ms: 0, usualMs: 0 };
    this.apply(this.trial.threads);
  }

  private judge(ms: number, usual: number): void {
    const trial = this.trial!;
    trial.passes++;
    trial.ms += ms;
    trial.usualMs += usual;
    // A collapsed choice is given up after one pass: it can be 100x slower.
    const worse = ms > 2 * usual;
    if (!worse && trial.passes < 4) return;
    this.trial = undefined;
    if (!worse && trial.ms < 0.85 * trial.usualMs) {
      this.current = trial.threads;
      this.usual.clear();
      this.interval = 1000;
    } else {
      this.apply(this.current);
      this.interval = Math.min(8000, this.interval * 2);
    }
  }
}

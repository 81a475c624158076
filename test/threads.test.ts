// The thread governor against simulated machines: idle (all cores fastest), busy (one thread fastest).
import { describe, expect, it } from 'vitest';
import { ThreadGovernor } from '../src/engine/threads.js';

/** Runs `passes` one-token passes whose time depends on the thread count; returns the threads per pass. */
function simulate(governor: ThreadGovernor, msFor: (threads: number, pass: number) => number, passes: number, applied: number[]): number[] {
  const used: number[] = [];
  for (let i = 0; i < passes; i++) {
    const threads = applied[applied.length - 1];
    used.push(threads);
    governor.observe(1, msFor(threads, i));
  }
  return used;
}

describe('thread governor', () => {
  it('keeps every core on an idle machine, trying one thread now and then', () => {
    const applied = [2];
    const governor = new ThreadGovernor(2, (n) => applied.push(n));
    const used = simulate(governor, (t) => (t === 2 ? 1 : 1.4), 20_000, applied);
    expect(governor.current).toBe(2);
    expect(used.filter((t) => t === 1).length / used.length).toBeLessThan(0.01);
  });

  it('moves to one thread when the cores are busy, and back when they are free again', () => {
    const applied = [2];
    const governor = new ThreadGovernor(2, (n) => applied.push(n));
    const busy = (t: number, pass: number) => (pass < 5000 ? (t === 2 ? 1 : 1.4) : pass < 10_000 ? (t === 2 ? 40 : 1.5) : t === 2 ? 1 : 1.4);
    const used = simulate(governor, busy, 30_000, applied);
    const collapsed = used.slice(5000, 10_000).filter((t) => t === 2).length;
    expect(collapsed).toBeLessThan(60); // about a second's worth of passes before the first trial
    // Back within the longest pause between trials (8 s, here about 6,000 passes).
    expect(used.slice(20_000).filter((t) => t === 2).length).toBeGreaterThan(9900);
    expect(governor.current).toBe(2);
  });

  it('does nothing with one core', () => {
    const applied: number[] = [];
    const governor = new ThreadGovernor(1, (n) => applied.push(n));
    for (let i = 0; i < 5000; i++) governor.observe(1, 1);
    expect(applied).toEqual([]);
  });
});

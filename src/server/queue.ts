// Requests take turns on the one context, first come first served. Past `limit` waiting, a request is turned
// away at once (503) instead of waiting behind a queue that will not clear.
import { ApiError } from './api-error.js';

interface Waiting {
  start: () => void;
  signal: AbortSignal;
}

export class RequestQueue {
  private running = false;
  private readonly waiting: Waiting[] = [];

  constructor(private readonly limit: number) {}

  /** Runs `job` when its turn comes; a request whose signal aborts while it waits leaves the queue. */
  async run<T>(job: () => Promise<T>, signal: AbortSignal): Promise<T> {
    const cancelled = () => (signal.reason instanceof ApiError ? signal.reason : new ApiError(503, 'the request was cancelled before its turn'));
    // A signal that aborted before the request got here never fires again.
    if (signal.aborted) throw cancelled();
    if (this.running) {
      if (this.waiting.length >= this.limit) throw new ApiError(503, `the server is busy: ${this.waiting.length} requests are waiting; retry later`);
      await new Promise<void>((start, reject) => {
        const entry = { start, signal };
        this.waiting.push(entry);
        signal.addEventListener('abort', () => {
          const at = this.waiting.indexOf(entry);
          if (at >= 0) this.waiting.splice(at, 1);
          reject(cancelled());
        }, { once: true });
      });
    }
    // A waiting request was handed the turn with `running` still true, so that no newcomer slips in between.
    this.running = true;
    try {
      // Handed the turn as it was cancelled: it passes the turn on.
      if (signal.aborted) throw cancelled();
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next.start();
      else this.running = false;
    }
  }
}

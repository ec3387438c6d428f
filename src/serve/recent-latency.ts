/**
 * Latency percentiles of the sessions that finished lately, for a plot over time: outcomes go into the
 * window of the current second; a reader gets the last complete window's figures. A job's own percentiles
 * are over the whole job, and move less and less as it goes on.
 */
import { LatencyHistogram } from '../reset/latency-histogram.js';

/** One window's length. */
const WINDOW_MS = 1000;

export interface RecentFigures {
  /** Sessions finished in the window. */
  sessions: number;
  latencyMs: { p50: number; p95: number; p99: number };
}

const round = (n: number): number => Math.round(n * 10) / 10;

export class RecentLatency {
  #current = new LatencyHistogram();
  #last: LatencyHistogram | undefined;
  #windowStart: number;
  readonly #now: () => number;

  /** `now`: milliseconds, monotonic. */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#windowStart = now();
  }

  record(ms: number): void {
    this.#roll();
    this.#current.record(ms);
  }

  /** The last complete window's figures (zeros before the first one ends, or after a quiet second). */
  figures(): RecentFigures {
    this.#roll();
    const last = this.#last;
    if (last === undefined || last.count === 0) return { sessions: 0, latencyMs: { p50: 0, p95: 0, p99: 0 } };
    return {
      sessions: last.count,
      latencyMs: {
        p50: round(last.quantile(0.5)),
        p95: round(last.quantile(0.95)),
        p99: round(last.quantile(0.99)),
      },
    };
  }

  #roll(): void {
    const elapsed = this.#now() - this.#windowStart;
    if (elapsed < WINDOW_MS) return;
    // More than one window went by: the one just before now was empty.
    this.#last = elapsed < 2 * WINDOW_MS ? this.#current : undefined;
    this.#current = new LatencyHistogram();
    this.#windowStart += Math.floor(elapsed / WINDOW_MS) * WINDOW_MS;
  }
}

/**
 * A job's in-flight limit: a gate that lets at most `limit` resets through at once, the limit fixed or
 * set by an adaptive depth. The bulk runner takes a slot before each reset and gives it back after; the
 * pipeline reports each answer's latency, which the adaptive depth turns into the limit.
 */
import type { AdaptiveDepth, DepthCut } from './adaptive-depth.js';

export class DepthLimiter {
  /** The adaptive depth, or undefined for a fixed limit. */
  readonly control: AdaptiveDepth | undefined;
  readonly #fixed: number;
  #held = 0;
  readonly #waiters: ((granted: boolean) => void)[] = [];

  constructor(limit: number | AdaptiveDepth) {
    this.control = typeof limit === 'number' ? undefined : limit;
    this.#fixed = typeof limit === 'number' ? Math.max(1, Math.floor(limit)) : 0;
  }

  /** Resets allowed in flight now. */
  get limit(): number {
    return this.control?.limit ?? this.#fixed;
  }

  /** The most the limit can ever be: how many workers a run needs. */
  get ceiling(): number {
    return this.control?.ceiling ?? this.#fixed;
  }

  /** Resets in flight now. */
  get inFlight(): number {
    return this.#held;
  }

  /**
   * Takes a slot: undefined when one is free now, else a promise that resolves with true when one is, or
   * with false when the waiters were sent away (`abandon`).
   */
  acquire(): Promise<boolean> | undefined {
    if (this.#held < this.limit && this.#waiters.length === 0) {
      this.#held++;
      return undefined;
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Sends every waiter away without a slot (the run stopped taking sessions). */
  abandon(): void {
    for (const resolve of this.#waiters.splice(0)) resolve(false);
  }

  /** Gives a slot back; the next waiters get theirs while the limit (which may have moved) allows. */
  release(): void {
    this.#held--;
    while (this.#held < this.limit && this.#waiters.length > 0) {
      this.#held++;
      this.#waiters.shift()!(true);
    }
  }

  /** An answer came after `latencyMs` (its send waited for a turn when `waited`): the cut it caused. */
  observe(latencyMs: number, waited: boolean): DepthCut | undefined {
    return this.control?.observe(latencyMs, { inFlight: this.#held, waited });
  }
}

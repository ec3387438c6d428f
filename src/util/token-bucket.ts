/**
 * A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. Used by the emulator's rate
 * limits (synchronously) and by the client's `--rate` (through `take`).
 */
export class TokenBucket {
  readonly ratePerSec: number;
  readonly burst: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSec: number, burst = Math.max(1, ratePerSec), now = performance.now()) {
    if (!(ratePerSec > 0)) throw new RangeError(`ratePerSec must be > 0, got ${ratePerSec}`);
    this.ratePerSec = ratePerSec;
    this.burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  #refill(now: number): void {
    if (now > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.ratePerSec);
      this.#last = now;
    }
  }

  /** Takes a token if one is there: returns 0. Otherwise returns the milliseconds until one will be. */
  tryTake(now = performance.now()): number {
    this.#refill(now);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) / this.ratePerSec) * 1000);
  }

  /**
   * Reserves a token now, possibly going into debt, and returns how long the caller must wait before
   * using it. Callers that wait in turn are then served at exactly the rate, first come first served.
   */
  reserve(now = performance.now()): number {
    this.#refill(now);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.ratePerSec) * 1000);
  }
}

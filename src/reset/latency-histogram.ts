/**
 * Latency percentiles in constant memory: log-spaced buckets 2 % wide from 0.05 ms to about an hour, so
 * a million resets cost the same few kilobytes as ten.
 */
const MIN_MS = 0.05;
const GROWTH = 1.02;
const BUCKETS = Math.ceil(Math.log(3_600_000 / MIN_MS) / Math.log(GROWTH)) + 2;

export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #max = 0;

  record(ms: number): void {
    const value = Math.max(0, ms);
    const index =
      value <= MIN_MS
        ? 0
        : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(value / MIN_MS) / Math.log(GROWTH)));
    this.#counts[index]!++;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
  }

  get count(): number {
    return this.#count;
  }

  get mean(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count;
  }

  /** The `p` quantile (0–1), to within 2 %; 0 when empty. */
  quantile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(p * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return i === 0 ? MIN_MS : Math.min(this.#max, MIN_MS * GROWTH ** i);
    }
    return this.#max;
  }
}

/**
 * Adaptive depth: how many resets a job keeps in flight, found from the engine's latency (after TCP
 * Vegas and Netflix's Gradient limits) instead of being told.
 *
 * - Floor: the lowest round latency seen (each round's median, so one lucky answer does not set it). It
 *   never drifts up with the queue it measures; only a round that is still slow at the minimum limit,
 *   where the queue is as short as it gets, says the engine itself became slower: its latency is the floor.
 * - Target: latency counts as near the floor up to `tolerance` × the floor, or the floor + `slackMs`,
 *   whichever is more. A loopback engine's floor is a fraction of a millisecond, and a few milliseconds of
 *   queue is what pipelining costs there; a remote engine's floor is tens of milliseconds.
 * - Rounds: one decision per round of answers (about one round trip's worth: `limit` answers, at least 8),
 *   or sooner, once more than half a round's worth came back over the target; and never shorter than
 *   `roundMs`, so that a stall of a busy machine (a few milliseconds in which nothing is read) does not
 *   pass for a queue. Answers to sends made before the last cut waited in the old limit's queue: they
 *   are not counted.
 * - Grow: while the round's median stays within the target, and the limit was reached (more would have
 *   been sent) without the send rate making sends wait. It doubles each round at the start, then adds
 *   about √limit a round: after the first cut, or once latency passed half-way from the floor to the
 *   target (as HyStart ends TCP's slow start before the queue overflows).
 * - Cut: a round's median above the target scales the limit by target ÷ median (between ×0.5 and ×0.9):
 *   latency grows with the queue, so that brings it back to the target.
 * - Bounds: never above `ceiling`, never below `minLimit`.
 *
 * Pure: the clock is passed in; the job's depth limiter feeds it each answer's latency.
 */

export interface AdaptiveDepthOptions {
  /** The most resets in flight. @default 1024 */
  ceiling?: number;
  /** The fewest. @default 4 (or the ceiling, when lower) */
  minLimit?: number;
  /** The first limit. @default 16 (or the ceiling, when lower) */
  initialLimit?: number;
  /** Latency within this many times its floor counts as near it. @default 1.5 */
  tolerance?: number;
  /** Latency within this many milliseconds above its floor counts as near it too. @default 5 */
  slackMs?: number;
  /** A round lasts at least this long, in ms. @default 50 */
  roundMs?: number;
  /** Milliseconds, monotonic. @default performance.now */
  now?: () => number;
}

/** Why and how far the limit was cut. */
export interface DepthCut {
  from: number;
  to: number;
  /** The round's median latency, the target it passed, and the floor the target comes from. */
  latencyMs: number;
  targetMs: number;
  floorMs: number;
}

/** What the limiter knows of one answer besides its latency. */
export interface DepthSample {
  /** Resets in flight when it came, itself included. */
  inFlight: number;
  /** Whether the send rate made its send wait for a turn. */
  waited: boolean;
}

const MIN_ROUND = 8;
/** The most answers a round keeps; a round that fills it ends there. */
const MAX_ROUND = 4096;
const MIN_CUT = 0.5;
const MAX_CUT = 0.9;

export class AdaptiveDepth {
  readonly ceiling: number;
  readonly minLimit: number;
  readonly #tolerance: number;
  readonly #slackMs: number;
  readonly #now: () => number;
  readonly #roundMs: number;
  #limit: number;
  #phase: 'start' | 'steady' = 'start';
  #floor = Infinity;
  #cuts = 0;
  #lastCut: (DepthCut & { at: number }) | undefined;
  /** The current round: latencies, how many reached the limit, how many waited for a turn. */
  readonly #round = new Float64Array(MAX_ROUND);
  #roundAt = 0;
  #n = 0;
  #full = 0;
  #waited = 0;
  #over = 0;

  constructor(options: AdaptiveDepthOptions = {}) {
    this.ceiling = Math.floor(options.ceiling ?? 1024);
    if (!(this.ceiling >= 1)) throw new RangeError(`ceiling must be ≥ 1, got ${options.ceiling}`);
    this.minLimit = Math.max(1, Math.min(Math.floor(options.minLimit ?? 4), this.ceiling));
    this.#limit = Math.max(this.minLimit, Math.min(Math.floor(options.initialLimit ?? 16), this.ceiling));
    this.#tolerance = options.tolerance ?? 1.5;
    this.#slackMs = options.slackMs ?? 5;
    this.#now = options.now ?? (() => performance.now());
    this.#roundMs = options.roundMs ?? 50;
  }

  /** Resets allowed in flight now. */
  get limit(): number {
    return this.#limit;
  }

  get phase(): 'start' | 'steady' {
    return this.#phase;
  }

  /** The lowest round latency seen, in ms (Infinity before the first round). */
  get floorMs(): number {
    return this.#floor;
  }

  /** The latency up to which the limit may grow, in ms. */
  get targetMs(): number {
    return Math.max(this.#floor * this.#tolerance, this.#floor + this.#slackMs);
  }

  get cuts(): number {
    return this.#cuts;
  }

  /** The last cut, and when it was made (ms on the controller's clock). */
  get lastCut(): (DepthCut & { at: number }) | undefined {
    return this.#lastCut;
  }

  /** One answer's latency in ms: returns the cut it caused, if it ended a round with one. */
  observe(latencyMs: number, sample: DepthSample, now = this.#now()): DepthCut | undefined {
    if (!(latencyMs >= 0)) return undefined;
    if (this.#lastCut !== undefined && now - latencyMs < this.#lastCut.at) return undefined;
    if (this.#n === 0) this.#roundAt = now;
    this.#round[this.#n++] = latencyMs;
    if (sample.inFlight >= this.#limit) this.#full++;
    if (sample.waited) this.#waited++;
    if (latencyMs > this.targetMs) this.#over++;
    const size = Math.max(MIN_ROUND, this.#limit);
    const due = (this.#n >= size || this.#over * 2 > size) && now - this.#roundAt >= this.#roundMs;
    return due || this.#n === MAX_ROUND ? this.#decide(now) : undefined;
  }

  #decide(now: number): DepthCut | undefined {
    const n = this.#n;
    const median = this.#round.subarray(0, n).sort()[n >> 1]!;
    const reached = this.#full > 0;
    const paced = this.#waited * 2 > n;
    this.#n = this.#full = this.#waited = this.#over = 0;
    const from = this.#limit;
    if (median < this.#floor) this.#floor = median;
    else if (from === this.minLimit && median > this.targetMs) this.#floor = median;
    const target = this.targetMs;
    if (median > (this.#floor + target) / 2) this.#phase = 'steady';
    let cut: DepthCut | undefined;
    if (median > target) {
      const factor = Math.min(MAX_CUT, Math.max(MIN_CUT, target / median));
      this.#limit = Math.max(this.minLimit, Math.floor(from * factor));
      this.#phase = 'steady';
      this.#cuts++;
      cut = { from, to: this.#limit, latencyMs: median, targetMs: target, floorMs: this.#floor };
      this.#lastCut = { ...cut, at: now };
    } else if (reached && !paced) {
      const grown = this.#phase === 'start' ? from * 2 : from + Math.max(1, Math.round(Math.sqrt(from)));
      this.#limit = Math.min(this.ceiling, grown);
    }
    return cut;
  }
}

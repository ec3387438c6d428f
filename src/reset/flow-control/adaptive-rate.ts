/**
 * Adaptive send rate: finds an engine's rate cap without being told it, and follows it when it moves.
 *
 * - Start: the rate doubles every `rampMs` until the engine first refuses a send.
 * - Cut: a refusal (`RATE_LIMITED`, HTTP 429) of a send made after the last cut sets the rate to `beta` ×
 *   the rate the engine accepted over the last second — the best estimate of its cap, since a saturated
 *   token bucket lets through exactly its rate. Refusals of sends made before the cut say nothing new.
 *   But a bucket that was not saturated all that second (the start spent its burst allowance, or a rate
 *   below the cap let it fill again) let more through than its rate: a refusal before the probe is back
 *   at the last estimate bounds the new one by what the engine accepted since the last cut, when its
 *   bucket was empty (one more send than that, over the time since it), down to half the rate in force.
 *   So a fast start that met the cap inside the engine's burst comes down to the cap in a few refusals
 *   instead of a tenth at a time.
 * - Probe: after a cut the rate follows a cubic in the time since the cut (as CUBIC does): back to the
 *   estimate after `K` seconds, flat around it, then faster and faster above it until the next refusal.
 *   `K` is stretched at low rates so a probe cycle spans enough sends to keep refusals a small share.
 * - The rate never passes `ceiling`, and never runs far ahead of what is used: it is held to twice the
 *   accepted rate (a client limited by its depth, not by the engine, does not ramp forever). At the start
 *   that is the rate over the last `startWindow` accepted sends (or all of them, while fewer), or over the
 *   last second when that gives more: the start grows as fast as its sends are answered, and its first cut
 *   is not held back by a slow first second.
 * - Turns are tickets: a turn taken while the rate was low goes once the risen rate reaches it
 *   (`waitFor`), instead of sleeping out the wait it was given then.
 * - Idle: a rate still in its start that took no turn for a second starts again at the next one (a
 *   service's shared controller between two jobs): held to the rate accepted before it went idle, it
 *   would start far slower than a fresh one. After a cut it keeps its estimate of the cap.
 *
 * Pure: the clock is passed in. The pipeline asks `reserve()` before each send and reports each answer.
 */
import type { SendPacer } from './pacer.js';

export interface AdaptiveRateOptions {
  /** A rate it never passes, per second. @default Infinity */
  ceiling?: number;
  /** The first rate, per second. @default 20 */
  initialRate?: number;
  /** @default 1 */
  minRate?: number;
  /** Share of the accepted rate kept after a refusal. @default 0.9 */
  beta?: number;
  /** The start doubles the rate this often. @default 75 */
  rampMs?: number;
  /** Seconds from a cut back to the estimate, at least. @default 1.5 */
  minProbeSec?: number;
  /** Sends a probe cycle spans at least (stretches `K` at low rates). @default 300 */
  sendsPerProbe?: number;
  /**
   * The start holds the rate to twice what the engine accepted over its last this many sends (or the last
   * second, when that gives more). @default 32
   */
  startWindow?: number;
  /** Milliseconds, monotonic. @default performance.now */
  now?: () => number;
}

const SLOT_MS = 100;
const SLOTS = 10; // one second of accepted sends
/** How much of the peak estimate survives each cut: a cap that fell is forgotten after a few cuts. */
const PEAK_DECAY = 0.9;

export class AdaptiveRate implements SendPacer {
  readonly adapts = true;
  readonly ceiling: number;
  readonly #minRate: number;
  readonly #beta: number;
  readonly #rampMs: number;
  readonly #minProbeSec: number;
  readonly #sendsPerProbe: number;
  readonly #now: () => number;
  readonly #initialRate: number;
  /** When each of the last `startWindow` accepted sends was answered (a ring). */
  readonly #recent: Float64Array;
  #recentCount = 0;

  #phase: 'start' | 'probe' = 'start';
  #startedAt: number;
  /** The estimate of the engine's cap at the last cut, and the cubic's constants. */
  #wMax = 0;
  /** The largest estimate lately (decays at each cut): the probe's scale. */
  #peak = 0;
  #cutAt = -Infinity;
  /** When the last cut was made (`#cutAt` is moved by `setPeers`), and the sends accepted since then. */
  #lastCut = -Infinity;
  #sinceCut = 0;
  #k = 0;
  #c = 0;
  /** The bucket: a small burst (50 ms of the rate), served first come first served. */
  #tokens = 1;
  /** Turns handed out: a turn's ticket may go once `#issued + #tokens` (the turns served) reaches it. */
  #issued = 0;
  #last: number;
  /** Accepted sends in 100 ms slots over the last second. */
  readonly #slots = new Array<number>(SLOTS).fill(0);
  #slotAt: number;
  #refused = 0;
  #cuts = 0;
  /** Processes known to share the cap, this one included (`setPeers`). */
  #peers = 1;
  /** When the last turn was taken. */
  #turnAt = -Infinity;

  constructor(options: AdaptiveRateOptions = {}) {
    this.ceiling = options.ceiling ?? Infinity;
    if (!(this.ceiling > 0)) throw new RangeError(`ceiling must be > 0, got ${this.ceiling}`);
    this.#minRate = Math.min(options.minRate ?? 1, this.ceiling);
    this.#initialRate = Math.min(options.initialRate ?? 20, this.ceiling);
    this.#beta = options.beta ?? 0.9;
    this.#rampMs = options.rampMs ?? 75;
    this.#minProbeSec = options.minProbeSec ?? 1.5;
    this.#sendsPerProbe = options.sendsPerProbe ?? 300;
    this.#now = options.now ?? (() => performance.now());
    this.#recent = new Float64Array(Math.max(2, Math.floor(options.startWindow ?? 32)));
    const now = this.#now();
    this.#startedAt = now;
    this.#last = now;
    this.#slotAt = Math.floor(now / SLOT_MS);
  }

  /** Sends the engine refused, and cuts made, so far. */
  get refusals(): number {
    return this.#refused;
  }

  get cuts(): number {
    return this.#cuts;
  }

  get phase(): 'start' | 'probe' {
    return this.#phase;
  }

  slowedSince(t: number): boolean {
    return this.#cutAt > t;
  }

  /** The rate in force now, per second. */
  rate(now = this.#now()): number {
    let rate: number;
    if (this.#phase === 'start') {
      rate = this.#initialRate * 2 ** ((now - this.#startedAt) / this.#rampMs);
    } else {
      const t = (now - this.#cutAt) / 1000 - this.#k;
      rate = this.#wMax + this.#peak * this.#c * t * t * t;
    }
    // Never far ahead of what is used: twice the accepted rate, and never below the first rate.
    // At the start, the recent rate lets it ramp fast; the second's keeps a short stall from holding it back.
    const second = this.acceptedRate(now);
    const accepted = this.#phase === 'start' ? Math.max(this.#recentRate(now), second) : second;
    const used = Math.max(this.#initialRate, this.#wMax * this.#beta, 2 * accepted);
    return Math.max(this.#minRate, Math.min(rate, used, this.ceiling));
  }

  /** Sends the engine accepted over the last second (or since the start, when younger). */
  acceptedRate(now = this.#now()): number {
    this.#roll(now);
    let total = 0;
    for (const n of this.#slots) total += n;
    const span = Math.min(SLOTS * SLOT_MS, Math.max(SLOT_MS, now - this.#startedAt));
    return (total * 1000) / span;
  }

  reserve(now = this.#now()): number {
    // The start counts from the first send, not from when the job was made (it dials, reads its input).
    if (this.#issued === 0 || (this.#phase === 'start' && now - this.#turnAt >= SLOTS * SLOT_MS))
      this.#restart(now);
    this.#turnAt = now;
    const rate = this.#refill(now);
    this.#tokens -= 1;
    this.#issued++;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / rate) * 1000);
  }

  /** The ticket of the last turn handed out: `waitFor` tells how much longer it waits. */
  get issued(): number {
    return this.#issued;
  }

  /**
   * The milliseconds the turn `ticket` still waits, at the rate in force now: a turn taken early in the
   * start, when the rate was low, goes as soon as the risen rate reaches it.
   */
  waitFor(ticket: number, now = this.#now()): number {
    const rate = this.#refill(now);
    const behind = ticket - (this.#issued + this.#tokens);
    return behind <= 0 ? 0 : Math.ceil((behind / rate) * 1000);
  }

  /** Adds the turns the rate made since the last call (a burst of 50 ms of the rate at most). */
  #refill(now: number): number {
    const rate = this.rate(now);
    const burst = Math.max(1, rate / 20);
    if (now > this.#last) {
      this.#tokens = Math.min(burst, this.#tokens + ((now - this.#last) / 1000) * rate);
      this.#last = now;
    }
    return rate;
  }

  accepted(sentAt: number, now = this.#now()): void {
    if (sentAt >= this.#lastCut) this.#sinceCut++;
    this.#roll(now);
    this.#slots[this.#slotAt % SLOTS]!++;
    this.#recent[this.#recentCount++ % this.#recent.length] = now;
  }

  /**
   * The accepted rate over the last `startWindow` sends (all of them, while fewer) when they took less
   * than a second; else 0.
   */
  #recentRate(now: number): number {
    const size = this.#recent.length;
    const n = Math.min(size, this.#recentCount);
    if (n < 2) return 0;
    const span = now - this.#recent[(this.#recentCount - n) % size]!;
    return span < SLOTS * SLOT_MS ? (n * 1000) / Math.max(span, 1) : 0;
  }

  /**
   * How many processes share the engine's cap now, this one included, when a caller knows (a service's
   * replicas, from the store's claims). After a cut, the estimate is this process's share: when peers
   * leave, theirs is added to it at once (`peers before ÷ peers now`), and when peers join it gives theirs
   * up, instead of waiting for refusals or for a slow probe to find the cap moved. The start finds the cap
   * by itself.
   */
  setPeers(peers: number, now = this.#now()): void {
    const n = Math.max(1, Math.floor(peers));
    if (!Number.isFinite(n) || n === this.#peers) return;
    const share = this.#peers / n;
    this.#peers = n;
    if (this.#phase !== 'probe') return;
    // The estimate scaled by the share, and the probe's clock set so the rate is at it now.
    this.#wMax = Math.max(this.#minRate, Math.min(this.#wMax * share, this.ceiling));
    this.#peak = Math.max(this.#wMax, this.#peak * share);
    this.#cutAt = now - this.#k * 1000;
  }

  /** A refusal of a send made at `sentAt`: cuts once per refusal that the last cut could not explain. */
  refused(sentAt: number, now = this.#now()): boolean {
    this.#refused++;
    if (sentAt < this.#cutAt) return false;
    const accepted = this.acceptedRate(now);
    const rate = this.rate(now);
    // Refused below what it accepted: another client shares the cap. The lower of the two is the share.
    let estimate = Math.min(accepted > 0 ? accepted : rate, rate);
    if (this.#phase === 'probe' && now < this.#cutAt + this.#k * 1000) {
      // The engine's bucket was empty at the last cut: since then it let through its rate, and one more.
      const since = ((this.#sinceCut + 1) * 1000) / Math.max(now - this.#lastCut, 1);
      estimate = Math.min(estimate, Math.max(since, rate / 2));
    }
    estimate = Math.max(this.#minRate, estimate);
    this.#wMax = estimate;
    this.#cutAt = this.#lastCut = now;
    this.#sinceCut = 0;
    this.#phase = 'probe';
    this.#cuts++;
    // The probe grows in absolute terms on the scale of the largest recent estimate, as CUBIC's does: a
    // client holding a small share of a shared cap (a smaller estimate than its peak) returns to it sooner
    // and then grows as fast as a large one, so shares even out instead of keeping their ratio.
    this.#peak = Math.max(estimate, this.#peak * PEAK_DECAY);
    // K for the peak: seconds back to it, so a cycle spans at least `sendsPerProbe` sends.
    const kPeak = Math.max(this.#minProbeSec, this.#sendsPerProbe / this.#peak);
    this.#c = (1 - this.#beta) / kPeak ** 3;
    this.#k = kPeak * Math.cbrt(estimate / this.#peak);
    this.#tokens = Math.min(this.#tokens, 0);
    return true;
  }

  /** The start counts from now, as a fresh controller's: nothing accepted before weighs on it. */
  #restart(now: number): void {
    this.#startedAt = this.#last = now;
    this.#recentCount = 0;
    this.#slots.fill(0);
    this.#slotAt = Math.floor(now / SLOT_MS);
  }

  #roll(now: number): void {
    const slot = Math.floor(now / SLOT_MS);
    if (slot === this.#slotAt) return;
    const steps = Math.min(SLOTS, slot - this.#slotAt);
    for (let i = 1; i <= steps; i++) this.#slots[(this.#slotAt + i) % SLOTS] = 0;
    this.#slotAt = slot;
  }
}

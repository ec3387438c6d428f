/**
 * A pacer spaces a job's sends: the pipeline asks it before each send, and tells it what the engine
 * answered. One pacer serves every worker and connection of a job (and every job of a process that
 * talks to the same engine and tenant: see `sharedPacer`).
 */
import { TokenBucket } from '../../util/token-bucket.js';

export interface SendPacer {
  /** Takes a turn: the milliseconds to wait before sending (0: now). Its ticket is then `issued`. */
  reserve(now?: number): number;
  /** The ticket of the last turn `reserve` handed out. */
  readonly issued: number;
  /**
   * The milliseconds turn `ticket` still waits at the rate in force now (an adaptive rate may have risen
   * or fallen since the turn was taken; a fixed one never moves, so its first wait is the whole wait).
   */
  waitFor(ticket: number, now?: number): number;
  /** The engine applied, or answered without refusing, a send made at `sentAt`. */
  accepted(sentAt: number, now?: number): void;
  /** The engine refused a send made at `sentAt` as over its rate: whether the pacer slowed down. */
  refused(sentAt: number, now?: number): boolean;
  /** The rate in force, per second (Infinity: none). */
  rate(now?: number): number;
  /** Whether a refusal slowed the pacer after `t` (a turn reserved at `t` is then taken again). */
  slowedSince(t: number): boolean;
  /** Sends the engine refused as over its rate, so far. */
  readonly refusals: number;
  /** Whether refusals change the rate (then a refusal pauses the job only as long as the engine asked). */
  readonly adapts: boolean;
  /** How many processes share the engine's cap now, this one included (an adaptive rate takes its share). */
  setPeers?(peers: number): void;
}

/** A fixed rate: a token bucket with a burst of 50 ms of the rate; answers change nothing. */
export class FixedRate implements SendPacer {
  readonly adapts = false;
  readonly #bucket: TokenBucket;

  constructor(ratePerSec: number) {
    this.#bucket = new TokenBucket(ratePerSec, Math.max(1, Math.ceil(ratePerSec / 20)));
  }

  readonly issued = 0;

  reserve(now?: number): number {
    return this.#bucket.reserve(now);
  }

  waitFor(): number {
    return 0;
  }

  accepted(): void {}

  #refused = 0;

  get refusals(): number {
    return this.#refused;
  }

  refused(): boolean {
    this.#refused++;
    return false;
  }

  slowedSince(): boolean {
    return false;
  }

  rate(): number {
    return this.#bucket.ratePerSec;
  }
}

/**
 * A shared backoff: when the engine says "slow down" (429, RATE_LIMITED) to one request, every request
 * of the job waits, not only the one that was told. Callers `wait()` before each attempt.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class BackoffGate {
  #until = 0;
  #pauses = 0;

  /** Holds every caller for at least `ms` from now (never shortens a pause already in force). */
  pause(ms: number, now = Date.now()): void {
    if (ms <= 0) return;
    this.#pauses++;
    this.#until = Math.max(this.#until, now + ms);
  }

  /** Milliseconds until the gate opens; 0 when open. */
  remaining(now = Date.now()): number {
    return Math.max(0, this.#until - now);
  }

  get pauses(): number {
    return this.#pauses;
  }

  /** Resolves when the gate is open; rejects with the signal's reason when aborted first. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (let left = this.remaining(); left > 0; left = this.remaining()) {
      // A ref'd timer: when every request of a run waits here, this wait is all that keeps the process
      // alive; an unref'd one lets Node end with the run unsettled (exit 13, no summary).
      await sleep(left, undefined, { signal });
    }
  }
}

/**
 * A write that waits for the state file's write lock without stopping its thread. SQLite's busy handler
 * sleeps the calling thread while another connection (the writer thread committing outcomes, another
 * process) holds the lock: a service's job thread would send and read nothing meanwhile, and its API
 * thread would answer nothing. Here the write is tried with no wait; while the lock is held it is tried
 * again a millisecond later, the thread doing its other work between, for up to `YIELD_MS`. Past that it
 * waits as every other write does, up to the connection's busy timeout.
 *
 * A try that found the lock held did nothing (`BEGIN IMMEDIATE`, or a lone statement, fails before any
 * change), so trying again is safe. The caller's code may run between tries: what must not interleave
 * with another write of the same thread is not written this way.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { StateDb } from './state-file.js';

const YIELD_MS = 1000;
const RETRY_MS = 1;

export interface YieldingWriteOptions {
  /**
   * Commits without syncing the file (`synchronous = NORMAL` for this write alone). The write survives
   * the process's crash at once, and a power cut once any later commit on the file syncs the log it is
   * in, as the writer thread's next batch or the next reservation mark does. Only for bookkeeping whose
   * loss in a power cut makes work be done again, never a reset sent twice: a chunk's claim, heartbeat or
   * end, a ledger's lease. What the user was answered (a job made, its state) is synced as it commits.
   */
  syncLater?: boolean;
}

export async function yieldingWrite<T>(
  db: StateDb,
  write: () => T,
  options: YieldingWriteOptions = {},
): Promise<T> {
  const until = performance.now() + YIELD_MS;
  const timeout = db.pragma('busy_timeout', { simple: true }) as number;
  const synchronous = db.pragma('synchronous', { simple: true }) as number;
  const attempt = (wait: number): T => {
    db.pragma(`busy_timeout = ${wait}`);
    if (options.syncLater === true) db.pragma('synchronous = NORMAL');
    try {
      return write();
    } finally {
      db.pragma(`busy_timeout = ${timeout}`);
      if (options.syncLater === true) db.pragma(`synchronous = ${synchronous}`);
    }
  };
  while (performance.now() < until) {
    try {
      return attempt(0);
    } catch (err) {
      if (!isBusy(err)) throw err;
    }
    await delay(RETRY_MS);
  }
  return attempt(timeout);
}

/** SQLite found the database locked (the error, or what a coded state error wraps). */
function isBusy(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) return true;
  }
  return false;
}

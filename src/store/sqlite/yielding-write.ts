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

export async function yieldingWrite<T>(db: StateDb, write: () => T): Promise<T> {
  const until = performance.now() + YIELD_MS;
  const timeout = db.pragma('busy_timeout', { simple: true }) as number;
  while (performance.now() < until) {
    db.pragma('busy_timeout = 0');
    try {
      return write();
    } catch (err) {
      if (!isBusy(err)) throw err;
    } finally {
      db.pragma(`busy_timeout = ${timeout}`);
    }
    await delay(RETRY_MS);
  }
  return write();
}

/** SQLite found the database locked (the error, or what a coded state error wraps). */
function isBusy(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) return true;
  }
  return false;
}

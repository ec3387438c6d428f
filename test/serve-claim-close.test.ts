/**
 * A replica that closes while its job's run waits for the store to claim the next chunk (another
 * connection holds the write lock): the claim may land after the run stopped, and the chunk it took is
 * given back, not held by a replica that is gone until its lease runs out.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startEmulator } from '../src/emulator/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { ids, json, replicaOver } from './helpers/service.js';
import { withDeadline } from './helpers/ws.js';

const N = 3000;
const dir = mkdtempSync(join(tmpdir(), 'cr-serve-claim-close-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** How long the held claim waits when nothing lets it go first: a lock another connection holds. */
const LOCK_HELD_MS = 300;

/**
 * The store, with every claim after the first that took a chunk held until the replica lets its chunks go (and then some:
 * the claim lands last) or, failing that, for `LOCK_HELD_MS`.
 */
function heldClaims(store: Store): {
  store: Store;
  waiting: Promise<void>;
  finished: Promise<void>;
  landed: Promise<void>;
  /** The job ids to look at when the replica lets its chunks go. */
  jobs: string[];
  /** How many chunks of those jobs were leased just before it did. */
  leasedAtRelease: number[];
} {
  const jobs: string[] = [];
  const leasedAtRelease: number[] = [];
  let claimedOne = false;
  let letGo!: () => void;
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  let entered!: () => void;
  const waiting = new Promise<void>((resolve) => (entered = resolve));
  let chunkFinished!: () => void;
  const finished = new Promise<void>((resolve) => (chunkFinished = resolve));
  let claimLanded!: () => void;
  const landed = new Promise<void>((resolve) => (claimLanded = resolve));
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === 'claimJobChunk')
        return async (options: Parameters<Store['claimJobChunk']>[0]) => {
          if (!claimedOne) {
            const chunk = await target.claimJobChunk(options);
            claimedOne = chunk !== undefined;
            return chunk;
          }
          entered();
          setTimeout(letGo, LOCK_HELD_MS);
          await gate;
          try {
            return await target.claimJobChunk(options);
          } finally {
            claimLanded();
          }
        };
      if (prop === 'finishJobChunk')
        return async (...args: Parameters<Store['finishJobChunk']>) => {
          const held = await target.finishJobChunk(...args);
          chunkFinished();
          return held;
        };
      if (prop === 'releaseJobChunks')
        return async (owner: string) => {
          leasedAtRelease.push(
            ...(await Promise.all(jobs.map(async (id) => (await target.jobChunkSummary(id)).leased))),
          );
          await target.releaseJobChunks(owner);
          letGo();
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: wrapped, waiting, finished, landed, jobs, leasedAtRelease };
}

describe('a replica that closes while a chunk claim waits for the store', () => {
  it('gives the chunk that claim took back: no chunk stays leased to it', async (t) => {
    const emulator = await startEmulator({ sessions: N, tenant: 'demo', botId: 'demo-bot' });
    const location = join(dir, 'state.sqlite');
    const real = await openStore(location);
    const held = heldClaims(real);
    const { url, auth, manager } = await replicaOver(t, {
      emulator,
      real,
      jobStore: held.store,
      dir: join(dir, 'jobs'),
    });
    const created = await fetch(`${url}/v1/jobs`, {
      ...json({ tenant: 'demo', sessions: ids(N) }),
      headers: { ...auth, 'content-type': 'application/json' },
    });
    assert.equal(created.status, 201);
    const { id } = (await created.json()) as { id: string };
    held.jobs.push(id);
    // The first chunk ran to its end while the run's claim of the second waits.
    await withDeadline(Promise.all([held.waiting, held.finished]), 30_000, 'the second claim to wait');
    await withDeadline(manager.close(), 30_000, 'the replica to close');
    await withDeadline(held.landed, 30_000, 'the held claim to land');
    const summary = await real.jobChunkSummary(id);
    assert.equal(summary.done, 1, 'the first chunk was finished');
    assert.equal(summary.leased, 0, 'no chunk is held by the replica that closed');
    // The run gave the chunk back itself, before the replica let its chunks go.
    assert.deepEqual(held.leasedAtRelease, [0]);
    assert.deepEqual(summary.owners, []);
  });
});

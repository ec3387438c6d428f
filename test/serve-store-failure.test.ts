/**
 * A replica whose store fails under a running job (a lost connection, a database restart): the job does
 * not fail for it. A chunk whose finish the store refused keeps its outcome lines, written once the store
 * takes them; a run that the store failed gives its chunks back, and a new run finishes the job. Every
 * session ends with its reset's line, reset once on the engine.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startEmulator } from '../src/emulator/index.js';
import { CognigyResetError } from '../src/errors.js';
import { openStore, type OutcomeWriter, type Store } from '../src/store/index.js';
import { ids, json, replicaOver } from './helpers/service.js';
import { withDeadline } from './helpers/ws.js';

const N = 3000;
const dir = mkdtempSync(join(tmpdir(), 'cr-serve-store-failure-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const lost = (): CognigyResetError =>
  new CognigyResetError('CR_ERR_STATE_WRITE', 'the connection to the store was lost');

/**
 * The store, with the first `failures` chunk finishes refused as a lost connection refuses them (negative:
 * written, then refused, as a connection lost after the commit), and, with `writerFailsAfter`, the first
 * run's outcome writer failing every append after that many.
 */
function failingStore(
  store: Store,
  failures: number,
  writerFailsAfter?: number,
): { store: Store; refused: () => number } {
  let refused = 0;
  let writers = 0;
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === 'writer' && writerFailsAfter !== undefined)
        return async (): Promise<OutcomeWriter> => {
          const writer = await target.writer();
          if (writers++ > 0) return writer;
          let appended = 0;
          return {
            append: (item) => {
              if (appended++ < writerFailsAfter) return writer.append(item);
              refused++;
              return Promise.reject(lost());
            },
            ack: (ids) => writer.ack(ids),
            close: () => writer.close(),
          };
        };
      if (prop === 'finishJobChunk')
        return (...args: Parameters<Store['finishJobChunk']>) => {
          if (refused < Math.abs(failures)) {
            refused++;
            if (failures > 0) return Promise.reject(lost());
            return target.finishJobChunk(...args).then(() => Promise.reject(lost()));
          }
          return target.finishJobChunk(...args);
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: wrapped, refused: () => refused };
}

describe('a store that fails under a running job', () => {
  for (const [name, finishes, writerFailsAfter] of [
    ['refuses three chunk finishes: their lines are kept', 3, undefined],
    ["loses the run's outcome writer: the run gives its chunks back, and a new run ends the job", 0, 500],
    ['writes two chunk finishes, then refuses them: the run goes on, no chunk claimed twice', -2, undefined],
  ] as const)
    it(`${name}; the job succeeds with every session's reset, each sent once`, async (t) => {
      const emulator = await startEmulator({ sessions: N, tenant: 'demo', botId: 'demo-bot' });
      const real = await openStore(join(dir, `state-${finishes}.sqlite`));
      const failing = failingStore(real, finishes, writerFailsAfter);
      const { url, auth } = await replicaOver(t, {
        emulator,
        real,
        jobStore: failing.store,
        dir: join(dir, `jobs-${finishes}`),
        // Heartbeats every 100 ms: a chunk whose finish seemed to fail meets one before the run ends.
        leaseMs: 300,
      });
      const created = await fetch(`${url}/v1/jobs`, {
        ...json({ tenant: 'demo', sessions: ids(N) }),
        headers: { ...auth, 'content-type': 'application/json' },
      });
      assert.equal(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      const done = await withDeadline(
        (async () => {
          for (;;) {
            const job = (await (await fetch(`${url}/v1/jobs/${id}`, { headers: auth })).json()) as {
              state: string;
              counts: { reset: number; verified: number; failed: number; skipped: number };
            };
            if (!['queued', 'running'].includes(job.state)) return job;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        })(),
        60_000,
        'the job to end',
      );
      assert.ok(failing.refused() >= Math.max(finishes, 1), 'the store refused writes');
      assert.equal(done.state, 'succeeded', JSON.stringify(done));
      // The counts are the store's ledgers': a reset whose record the lost writer never took is counted
      // as the later run found it (skipped, already reset); its line says what happened.
      const { reset, skipped, verified, failed } = done.counts;
      assert.deepEqual([reset + skipped, verified, failed], [N, N, 0]);
      if (writerFailsAfter === undefined) assert.equal(reset, N);
      const lines = (await (await fetch(`${url}/v1/jobs/${id}/outcomes`, { headers: auth })).text())
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as { sessionId: string; outcome: string; audited?: boolean });
      assert.equal(lines.length, N);
      assert.equal(new Set(lines.map((line) => line.sessionId)).size, N);
      assert.deepEqual([...new Set(lines.map((line) => line.outcome))], ['reset']);
      // What the lost writer refused is reported as not audited, never dropped.
      const unaudited = lines.filter((line) => line.audited === false).length;
      if (writerFailsAfter === undefined) assert.equal(unaudited, 0);
      else assert.ok(unaudited > 0 && unaudited === skipped, `${unaudited} not audited, ${skipped} skipped`);
      const stats = (await (await fetch(`${emulator.httpUrl}/emulator/stats`)).json()) as {
        resetsPerSession: Record<string, number>;
      };
      assert.deepEqual(stats.resetsPerSession, { 1: N });
      // No chunk ran twice: a finish that was written though it seemed to fail stopped nothing.
      if (finishes < 0) {
        const chunks = new Database(join(dir, `state-${finishes}.sqlite`), { readonly: true });
        const { most } = chunks.prepare('SELECT max(claims) AS most FROM job_chunks').get() as {
          most: number;
        };
        chunks.close();
        assert.equal(most, 1, 'a chunk was claimed again');
      }
    });
});

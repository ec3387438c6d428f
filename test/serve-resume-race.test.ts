/**
 * A job cancelled while sessions are in flight and resumed the moment the service accepts it, on two
 * replicas sharing one store (SQLite file and PostgreSQL): the resume is refused while the stopping runs
 * still hold their chunks, and once it is accepted every line those runs wrote in their last moments is in
 * the store. When the resumed job has ended, the outcomes route lists each session once, as its chunk's
 * ledger recorded it.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { startEmulator } from '../src/emulator/index.js';
import { buildApp } from '../src/serve/app.js';
import { JobManager } from '../src/serve/jobs.js';
import { createKey } from '../src/serve/keys.js';
import { ResetMetrics } from '../src/sinks/prometheus.js';
import { openStore, type Store } from '../src/store/index.js';
import { testDatabase, type TestDatabase } from './helpers/postgres.js';
import { emulatorTenant, followToEnd, followUntil, ids, json, type Service } from './helpers/service.js';
import { withDeadline } from './helpers/ws.js';

const N = 3000;
const post = { method: 'POST' };
const db = await testDatabase('resume');

type Ledger = (jobId: string) => Map<string, string> | Promise<Map<string, string>>;

/** Two replicas on one store, the first serving the API; resolves with what a test calls. */
async function replicas(t: TestContext, location: string): Promise<Service> {
  const emulator = await startEmulator({ sessions: N, tenant: 'demo', botId: 'demo-bot' });
  const dir = mkdtempSync(join(tmpdir(), 'cr-serve-resume-'));
  const tenants = new Map([['demo', emulatorTenant(emulator, 'demo')]]);
  const stores: Store[] = [];
  const managers: JobManager[] = [];
  for (const n of [1, 2]) {
    const store = await openStore(location);
    stores.push(store);
    // One chunk at a time on each: the job's chunks are shared by both.
    managers.push(
      new JobManager({
        maxRunning: 1,
        store,
        dir: join(dir, `jobs-${n}`),
        log: pino({ level: 'silent' }),
        tenants,
      }),
    );
  }
  const metrics = new ResetMetrics();
  const config = { maxRunningJobs: 1, rateLimitPerMinute: 6000, tenants };
  const app = await buildApp({
    store: stores[0]!,
    jobs: managers[0]!,
    config,
    metrics,
    draining: () => false,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    for (const manager of managers) await manager.close();
    await app.close();
    metrics.close();
    for (const store of stores) await store.close();
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url,
    store: stores[0]!,
    emulator,
    badOdataKey: '',
    key: async (scopes, keyTenants = []) =>
      (await createKey(stores[0]!, { scopes, tenants: keyTenants })).key,
    call: (path, key, init = {}) =>
      fetch(`${url}${path}`, {
        ...init,
        headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...init.headers },
      }),
  };
}

/** Resumes the job the moment the service accepts it; resolves with how many times it was refused first. */
async function resumeAtOnce(s: Service, key: string, id: string): Promise<number> {
  return withDeadline(
    (async () => {
      for (let refused = 0; ; refused++) {
        const res = await s.call(`/v1/jobs/${id}/resume`, key, post);
        if (res.status === 202) return refused;
        const body = (await res.json()) as { code: string; detail: string };
        assert.equal(res.status, 409, JSON.stringify(body));
        assert.equal(body.code, 'CR_ERR_API_NOT_RESUMABLE');
        assert.match(body.detail, /still stopping/);
      }
    })(),
    30_000,
    'the resume to be accepted',
  );
}

async function scenario(t: TestContext, location: string, ledgerOf: Ledger): Promise<void> {
  const s = await replicas(t, location);
  const key = await s.key(['jobs:write', 'jobs:read']);
  // A slow engine: the cancel finds sessions in flight on both replicas, whose lines come after it. It
  // holds its answers after 600 sends until the cancel is in, or the in-flight limit, which grows to match
  // the latency, could let the job end before the cancel on busy cores.
  s.emulator.setFaults({ latencyMs: 200, holdAfterSends: s.emulator.stats().sends + 600 });
  const created = await s.call('/v1/jobs', key, json({ tenant: 'demo', sessions: ids(N) }));
  assert.equal(created.status, 201);
  const id = ((await created.json()) as { id: string }).id;
  await followUntil(
    s,
    key,
    id,
    (status) =>
      Number(status['done']) >= 100 && (status['chunks'] as { owners: string[] }).owners.length === 2,
  );
  assert.equal((await s.call(`/v1/jobs/${id}/cancel`, key, post)).status, 202);
  s.emulator.setFaults({ holdAfterSends: 0 });
  // Refused while the stopping runs hold their chunks (their in-flight sessions take the engine's latency).
  assert.ok((await resumeAtOnce(s, key, id)) > 0, 'the resume was refused while the job was stopping');
  s.emulator.setFaults({ latencyMs: 0 });
  const last = await followToEnd(s, key, id);
  assert.equal(last['state'], 'succeeded', JSON.stringify(last));

  const text = (await (await s.call(`/v1/jobs/${id}/outcomes`, key)).text()).trim();
  const lines = text.split('\n').map((line) => JSON.parse(line) as { sessionId: string; outcome: string });
  assert.equal(new Set(lines.map((o) => o.sessionId)).size, N, 'every session is listed');
  assert.equal(lines.length, N, 'each session once');
  const ledger = await ledgerOf(id);
  assert.equal(ledger.size, N);
  const differ = lines.filter((o) => ledger.get(o.sessionId) !== o.outcome);
  assert.deepEqual(
    differ.slice(0, 5).map((o) => ({ ...o, ledger: ledger.get(o.sessionId) })),
    [],
    `${differ.length} sessions listed otherwise than their ledger has them`,
  );
  const counts = last['counts'] as Record<string, number>;
  for (const outcome of ['reset', 'failed', 'skipped'])
    assert.equal(lines.filter((o) => o.outcome === outcome).length, counts[outcome], outcome);
}

/** Each session's outcome in the job's chunk ledgers (`<jobId>.c<n>`). */
const ROWS = "SELECT session_id, outcome FROM job_sessions WHERE job_id LIKE $1 || '.c%'";

describe('serve: a job resumed the moment its cancel lets it', () => {
  it('lists each session once, as its ledger has it (SQLite, two replicas)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-resume-store-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'state.sqlite');
    await scenario(t, path, (jobId) => {
      const file = new Database(path, { readonly: true });
      try {
        const rows = file.prepare(ROWS.replace('$1', '?')).all(jobId) as {
          session_id: string;
          outcome: string;
        }[];
        return new Map(rows.map((r) => [r.session_id, r.outcome]));
      } finally {
        file.close();
      }
    });
  });

  if (db !== undefined) {
    const pg: TestDatabase = db;
    it('lists each session once, as its ledger has it (PostgreSQL, two replicas)', async (t) => {
      const url = await pg.freshSchema();
      await scenario(t, url, async (jobId) => {
        const rows = await pg.sql<{ session_id: string; outcome: string }>(ROWS, [jobId], url);
        return new Map(rows.map((r) => [r.session_id, r.outcome]));
      });
    });
  }
});

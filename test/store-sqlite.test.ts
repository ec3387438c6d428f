import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { AuditContext } from '../src/audit/record.js';
import { isCognigyResetError } from '../src/errors.js';
import { blankOutcome } from '../src/reset/outcome.js';
import { openStore } from '../src/store/index.js';
import { SCHEMA_VERSION } from '../src/store/sqlite/state-file.js';
import { yieldingWrite } from '../src/store/sqlite/yielding-write.js';
import { storeContract } from './helpers/store-contract.js';
import { withDeadline } from './helpers/ws.js';
import { serviceJobRecord } from './helpers/service-job.js';

const dir = mkdtempSync(join(tmpdir(), 'cr-store-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `store-${++n}.sqlite`);

storeContract('sqlite', () => openStore(fresh()));
storeContract('sqlite, committing in this thread', () => openStore(fresh(), { writerThread: false }));

const AUDIT: AuditContext = {
  actor: 'os:test',
  reason: null,
  jobId: 'j',
  tenant: 't',
  botId: 'b',
  transport: 'runtime-ws',
  notCleared: [],
};

/** A state file with a job of three recorded sessions and their audit records. */
async function withJob(path: string): Promise<void> {
  const store = await openStore(path);
  const job = await store.openJob({ jobId: 'j', settings: { x: 1 }, leaseMs: 60_000 });
  await job.reserve(0);
  const writer = await store.writer();
  await Promise.all(
    ['a', 'b', 'c'].map((id, index) =>
      writer.append({
        outcome: blankOutcome(id, 'reset', ['flow'], []),
        job: { jobId: 'j', index },
        audit: AUDIT,
      }),
    ),
  );
  await writer.close();
  await job.finish(true);
  await job.release();
  await store.close();
}

const codeOf = (code: string) => (err: unknown) => isCognigyResetError(err) && err.code === code;

describe('the SQLite store', () => {
  it('upgrades a version-5 file: its jobs and its audit chain are kept, and the chain verifies', async () => {
    const path = fresh();
    await withJob(path);
    // Back to what version 5 made: no leases, no outbox claims, no API keys.
    const db = new Database(path);
    db.exec(`
      DROP TABLE api_keys;
      ALTER TABLE job_runs DROP COLUMN owner;
      ALTER TABLE job_runs DROP COLUMN expires_at;
      ALTER TABLE outbox DROP COLUMN claimed_by;
      ALTER TABLE outbox DROP COLUMN claimed_until;
    `);
    db.pragma('user_version = 5');
    db.close();
    const store = await openStore(path);
    const job = await store.openJob({ jobId: 'j', settings: { x: 1 }, leaseMs: 60_000 });
    assert.equal(job.resumed, true);
    assert.deepEqual(
      await job.lookup([
        { sessionId: 'a', index: 0 },
        { sessionId: 'z', index: 9_000_000 },
      ]),
      ['done', 'new'],
    );
    await job.release();
    const verdict = await store.verifyAudit();
    assert.equal(verdict.ok, true, JSON.stringify(verdict.problem));
    assert.equal(verdict.records, 3);
    assert.equal((await store.listApiKeys()).length, 0);
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    check.close();
  });

  it("upgrades a version-6 file: its jobs, keys and chain are kept, and it keeps the service's jobs", async () => {
    const path = fresh();
    await withJob(path);
    const before = await openStore(path);
    await before.createApiKey({ id: 'k1', hash: 'a'.repeat(64), label: '', scopes: [], tenants: [] });
    await before.close();
    // Back to what version 6 made: no service jobs.
    const db = new Database(path);
    db.exec('DROP TABLE service_jobs');
    db.pragma('user_version = 6');
    db.close();
    const store = await openStore(path);
    assert.equal((await store.verifyAudit()).records, 3);
    assert.equal((await store.listApiKeys()).length, 1);
    assert.equal((await store.listJobs()).length, 1);
    await store.createServiceJob(serviceJobRecord('job_1', 'queued'));
    assert.deepEqual(
      (await store.listServiceJobs({ limit: 5 })).map((j) => j.id),
      ['job_1'],
    );
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    check.close();
  });

  it('upgrades a version-7 file: its service jobs are kept, and their chunks can be claimed', async () => {
    const path = fresh();
    await withJob(path);
    const before = await openStore(path);
    await before.createServiceJob(serviceJobRecord('job_1', 'running'));
    await before.close();
    // Back to what version 7 made: no chunks.
    const db = new Database(path);
    db.exec('DROP TABLE job_chunks; DROP TABLE job_chunk_outcomes');
    db.pragma('user_version = 7');
    db.close();
    const store = await openStore(path);
    assert.equal((await store.verifyAudit()).records, 3);
    assert.equal((await store.getServiceJob('job_1'))?.state, 'running');
    assert.deepEqual(await store.ledgerCounts(['j']), { outcomes: { reset: 3 }, verified: 0, errors: {} });
    await store.addJobChunks('job_1', [
      { chunkNo: 0, firstIndex: 0, count: 1, targets: '{"sessionId":"a"}\n' },
    ]);
    const chunk = await store.claimJobChunk({ owner: 'r1', leaseMs: 60_000 });
    assert.equal(chunk?.jobId, 'job_1');
    assert.equal(await store.finishJobChunk('job_1', 0, { owner: 'r1', outcomes: 'x\n', error: null }), true);
    assert.equal((await store.jobChunkSummary('job_1')).done, 1);
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    check.close();
  });

  it("upgrades a version-8 file: a chunk's outcome lines, kept in the chunk's row, become its first", async () => {
    const path = fresh();
    const before = await openStore(path);
    await before.createServiceJob(serviceJobRecord('job_1', 'running'));
    await before.addJobChunks('job_1', [
      { chunkNo: 0, firstIndex: 0, count: 3, targets: '{"sessionId":"a"}\n' },
    ]);
    await before.close();
    // Back to what version 8 made: the lines in the chunk's row.
    const db = new Database(path);
    db.exec(`DROP TABLE job_chunk_outcomes; UPDATE job_chunks SET outcomes = 'a\nb\n'`);
    db.pragma('user_version = 8');
    db.close();
    const store = await openStore(path);
    const chunk = await store.claimJobChunk({ owner: 'r1', leaseMs: 60_000 });
    assert.equal(chunk?.outcomes, 'a\nb\n');
    assert.equal(await store.finishJobChunk('job_1', 0, { owner: 'r1', outcomes: 'c\n', error: null }), true);
    const texts: string[] = [];
    for await (const text of store.jobChunkOutcomes('job_1')) texts.push(text);
    assert.deepEqual(texts, ['a\nb\nc\n']);
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(
      (check.prepare("SELECT count(*) AS n FROM job_chunks WHERE outcomes != ''").get() as { n: number }).n,
      0,
    );
    check.close();
  });

  it('refuses a file of a newer version, and reads a file read-only without changing it', async () => {
    const path = fresh();
    await withJob(path);
    const readOnly = await openStore(path, { readOnly: true });
    assert.equal((await readOnly.verifyAudit()).ok, true);
    await assert.rejects(
      readOnly.openJob({ jobId: 'j', settings: { x: 1 }, leaseMs: 1 }),
      codeOf('CR_ERR_STATE_OPEN'),
    );
    await readOnly.close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    await assert.rejects(openStore(path), codeOf('CR_ERR_STATE_NEWER'));
    await assert.rejects(openStore(path, { readOnly: true }), codeOf('CR_ERR_STATE_NEWER'));
  });

  it('finds an altered audit record', async () => {
    const path = fresh();
    await withJob(path);
    const db = new Database(path);
    db.prepare('UPDATE audit_records SET record = replace(record, \'"b"\', \'"x"\') WHERE seq = 2').run();
    db.close();
    const store = await openStore(path, { readOnly: true });
    const verdict = await store.verifyAudit();
    await store.close();
    assert.equal(verdict.ok, false);
    assert.equal(verdict.problem?.seq, 2);
  });

  it('fails an append it cannot commit with CR_ERR_STATE_WRITE', async () => {
    const path = fresh();
    const store = await openStore(path, { writerThread: false });
    const db = new Database(path);
    db.exec(`CREATE TRIGGER full BEFORE INSERT ON audit_records
      BEGIN SELECT RAISE(FAIL, 'database or disk is full (test)'); END;`);
    db.close();
    const writer = await store.writer();
    await assert.rejects(
      writer.append({ outcome: blankOutcome('a', 'reset', ['flow'], []), audit: AUDIT }),
      codeOf('CR_ERR_STATE_WRITE'),
    );
    await writer.close();
    await store.close();
  });

  it('waits for a write lock another connection holds without stopping its thread', async () => {
    const path = fresh();
    const store = await openStore(path);
    const other = new Database(path);
    other.prepare('BEGIN IMMEDIATE').run();
    let settled = false;
    const opening = store.openJob({ jobId: 'j', settings: {}, leaseMs: 60_000 }).finally(() => {
      settled = true;
    });
    // Timers fire while the claim waits: the thread is free, and the lock is let go from this thread.
    let ticks = 0;
    await withDeadline(
      new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (++ticks < 10) return;
          clearInterval(timer);
          resolve();
        }, 2);
      }),
      4_000,
      'timers to fire while the write waits',
    );
    assert.equal(settled, false, 'the claim waits for the lock');
    // Closing waits for the write on its way: it lands, and the file is closed after it.
    let closed = false;
    const closing = store.close().then(() => (closed = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false, 'the close waits for the claim');
    other.prepare('COMMIT').run();
    const job = await opening;
    assert.equal(job.resumed, false);
    await closing;
    await store.close();
    const row = other.prepare("SELECT count(*) AS n FROM job_runs WHERE job_id = 'j'").get() as { n: number };
    assert.equal(row.n, 1, 'the claim was written before the file closed');
    other.close();
  });

  it('commits bookkeeping unsynced and syncs the next write again, even after a failed one', async () => {
    const db = new Database(fresh(), { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (x INTEGER)');
    const during = await yieldingWrite(
      db,
      () => {
        db.prepare('INSERT INTO t VALUES (1)').run();
        return db.pragma('synchronous', { simple: true });
      },
      { syncLater: true },
    );
    assert.equal(during, 1, 'NORMAL while the bookkeeping commits');
    assert.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL again for what follows');
    await assert.rejects(
      yieldingWrite(
        db,
        () => {
          throw new Error('refused');
        },
        { syncLater: true },
      ),
      /refused/,
    );
    assert.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL again after a failed write');
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000, 'the lock is waited for as before');
    db.close();
  });

  it('takes over at once the lease of a process on this host that is gone', async () => {
    const path = fresh();
    const store = await openStore(path);
    await (await store.openJob({ jobId: 'j', settings: {}, leaseMs: 60_000 })).release();
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const db = new Database(path);
    db.prepare(
      "INSERT INTO job_runs (job_id, host, pid, process_start, started_at, owner, expires_at) VALUES ('j', ?, ?, NULL, ?, 'gone', '9999-01-01T00:00:00.000Z')",
    ).run(hostname(), gone, new Date().toISOString());
    db.close();
    const job = await store.openJob({ jobId: 'j', settings: {}, leaseMs: 60_000 });
    assert.equal(job.takenOver, undefined);
    await job.release();
    await store.close();
  });

  it('refuses a store URL of a scheme it has no backend for, without showing the URL', async () => {
    await assert.rejects(openStore('mysql://user:pw-SECRET@db.example/x'), (err: unknown) => {
      assert.ok(codeOf('CR_ERR_STATE_OPEN')(err));
      assert.ok(!(err as Error).message.includes('pw-SECRET'));
      return true;
    });
  });

  it('opens sqlite:PATH as the state file at PATH', async () => {
    const path = fresh();
    await withJob(path);
    const store = await openStore(`sqlite:${path}`, { readOnly: true });
    assert.equal(store.kind, 'sqlite');
    assert.equal((await store.verifyAudit()).records, 3);
    await store.close();
  });
});

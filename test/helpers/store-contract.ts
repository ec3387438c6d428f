/**
 * The store port's contract: what every backend does, run against each (`storeContract(name, open)`).
 * `open` gives a new, empty store each time; the suite closes what it opens.
 */
import * as assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import type { AuditContext } from '../../src/audit/record.js';
import { isCognigyResetError } from '../../src/errors.js';
import { blankOutcome, type ResetOutcome } from '../../src/reset/outcome.js';
import type { ServiceJobRecord, Store } from '../../src/store/port.js';
import { chunkContract } from './store-chunks-contract.js';

const AUDIT: AuditContext = {
  actor: 'os:contract',
  reason: 'contract test',
  jobId: 'job-a',
  tenant: 't',
  botId: 'b',
  transport: 'runtime-ws',
  notCleared: [],
};

const LONG = 600_000;

function outcome(sessionId: string, kind: 'reset' | 'failed' = 'reset'): ResetOutcome {
  const o = blankOutcome(sessionId, kind, ['flow'], []);
  o.verified = kind === 'reset';
  if (kind === 'failed') o.error = { code: 'CR_ERR_TRANSPORT_REST_TIMEOUT', message: 'timed out' };
  return o;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isCognigyResetError(err), String(err));
    assert.equal(err.code, code);
    return true;
  });
}

export function storeContract(name: string, open: () => Promise<Store>): void {
  const fresh = async (t: TestContext): Promise<Store> => {
    const store = await open();
    t.after(() => store.close());
    return store;
  };

  describe(`store contract: ${name}`, () => {
    it('claims a job, refuses a second claim while the lease holds, and takes it over once released', async (t) => {
      const store = await fresh(t);
      const first = await store.openJob({ jobId: 'j', settings: { a: 1 }, leaseMs: LONG });
      assert.equal(first.resumed, false);
      await rejectsWith(
        store.openJob({ jobId: 'j', settings: { a: 1 }, leaseMs: LONG }),
        'CR_ERR_STATE_JOB_RUNNING',
      );
      await rejectsWith(
        store.openJob({ jobId: 'j', settings: { a: 2 }, leaseMs: LONG }),
        'CR_ERR_STATE_JOB_MISMATCH',
      );
      // Another job is claimed beside it.
      const other = await store.openJob({ jobId: 'k', settings: {}, leaseMs: LONG });
      await other.release();
      await first.heartbeat();
      await first.release();
      const again = await store.openJob({ jobId: 'j', settings: { a: 1 }, leaseMs: LONG });
      assert.equal(again.resumed, true);
      assert.equal(again.takenOver, undefined);
      await again.release();
    });

    it('takes an expired lease over; the run that lost it learns so at its heartbeat', async (t) => {
      const store = await fresh(t);
      // A lease of 0 ms has expired as soon as it is written.
      const lapsed = await store.openJob({ jobId: 'j', settings: {}, leaseMs: 0 });
      const taker = await store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG });
      assert.equal(taker.resumed, true);
      assert.ok(taker.takenOver !== undefined, 'the expired lease is reported');
      await rejectsWith(lapsed.heartbeat(), 'CR_ERR_STATE_JOB_LOST');
      // Its release does not free the lease it lost.
      await lapsed.release();
      await rejectsWith(
        store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG }),
        'CR_ERR_STATE_JOB_RUNNING',
      );
      await taker.heartbeat();
      await taker.release();
    });

    it('takes a heartbeat that lands after its own release for no lost lease', async (t) => {
      const store = await fresh(t);
      const job = await store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG });
      // The run ends while a beat is on its way: the beat finds no lease of its own, which is no loss.
      const releasing = job.release();
      await job.heartbeat();
      await releasing;
      const again = await store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG });
      assert.equal(again.takenOver, undefined, 'the lease was released, and the beat did not bring it back');
      await again.release();
    });

    it('says done, unsure or new for each target, from what earlier runs recorded and reserved', async (t) => {
      const store = await fresh(t);
      const run1 = await store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG });
      assert.deepEqual(
        await run1.lookup([
          { sessionId: 's1', index: 0 },
          { sessionId: 's2', index: 1 },
        ]),
        ['new', 'new'],
      );
      await run1.reserve(0);
      const writer = await store.writer();
      await writer.append({ outcome: outcome('s1'), job: { jobId: 'j', index: 0 } });
      await writer.append({ outcome: outcome('s2', 'failed'), job: { jobId: 'j', index: 1 } });
      await writer.close();
      assert.deepEqual(await run1.counts(), { reset: 1, failed: 1 });
      await run1.finish(false);
      await run1.release();

      const run2 = await store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG });
      assert.equal(run2.resumed, true);
      const verdicts = await run2.lookup([
        { sessionId: 's2', index: 1 },
        { sessionId: 's1', index: 0 },
        // Never recorded, but below the mark reserved before the first run sent item 0: it may have been sent.
        { sessionId: 's3', index: 2 },
        { sessionId: 's-far', index: 10_000_000 },
      ]);
      assert.deepEqual(verdicts, ['unsure', 'done', 'unsure', 'new']);
      await run2.release();
    });

    it('makes the reservation marks of concurrent calls durable: a resumed run is unsure below the highest', async (t) => {
      const store = await fresh(t);
      const run1 = await store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG });
      // One call per session sent, all at once, as a bulk run makes them; each resolves once durable.
      await Promise.all([0, 1, 2, 9000, 9001, 3, 20_000].map((i) => run1.reserve(i)));
      await run1.release();
      const run2 = await store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG });
      assert.deepEqual(
        await run2.lookup([
          { sessionId: 'a', index: 20_000 },
          // The mark reaches 8,192 past the highest index reserved, and no further.
          { sessionId: 'b', index: 28_191 },
          { sessionId: 'c', index: 28_192 },
        ]),
        ['unsure', 'unsure', 'new'],
      );
      await run2.release();
    });

    it('appends outcomes with their audit records: the chain verifies, and records stream in order by filter', async (t) => {
      const store = await fresh(t);
      const writer = await store.writer();
      const ids = Array.from({ length: 30 }, (_, i) => `s-${i}`);
      await Promise.all(
        ids.map((id, i) =>
          writer.append({
            outcome: outcome(id, i % 3 === 0 ? 'failed' : 'reset'),
            audit: i < 20 ? AUDIT : { ...AUDIT, jobId: 'job-b' },
          }),
        ),
      );
      await writer.close();
      const verdict = await store.verifyAudit();
      assert.equal(verdict.ok, true, JSON.stringify(verdict.problem));
      assert.equal(verdict.records, 30);
      assert.equal(verdict.headSeq, 30);
      const all = [];
      for await (const r of store.auditRecords()) all.push(r);
      assert.deepEqual(
        all.map((r) => r.seq),
        ids.map((_, i) => i + 1),
      );
      assert.deepEqual(
        all.map((r) => r.sessionId),
        ids,
      );
      const failedB = [];
      for await (const r of store.auditRecords({ jobId: 'job-b', outcome: 'failed' }))
        failedB.push(r.sessionId);
      assert.deepEqual(failedB, ['s-21', 's-24', 's-27']);
      const anchored = await store.verifyAudit({ anchor: all[9]!.hash });
      assert.equal(anchored.ok, true);
      assert.equal(anchored.anchorSeq, 10);
    });

    it('claims outbox events for one owner at a time, acks them, and counts them by URL', async (t) => {
      const store = await fresh(t);
      const writer = await store.writer();
      const event = (url: string, i: number) => ({
        key: randomUUID(),
        urlSha256: url,
        payload: JSON.stringify({ i }),
      });
      await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => writer.append({ outbox: event('u1', i) })),
        writer.append({ outbox: event('u2', 99) }),
      ]);
      await writer.close();
      assert.deepEqual(await store.countOutbox('u1'), { mine: 6, others: 1 });
      const a = await store.claimOutbox('u1', { limit: 4, owner: 'a', leaseMs: LONG });
      const b = await store.claimOutbox('u1', { limit: 4, owner: 'b', leaseMs: LONG });
      assert.equal(a.length, 4);
      assert.equal(b.length, 2);
      assert.deepEqual(
        a.map((e) => e.id).filter((id) => b.some((e) => e.id === id)),
        [],
        'two owners got the same event',
      );
      assert.deepEqual(
        a.map((e) => JSON.parse(e.payload).i),
        [0, 1, 2, 3],
      );
      // Its own claims come back to the owner (a retry); nothing is left for a third.
      assert.equal((await store.claimOutbox('u1', { limit: 10, owner: 'a', leaseMs: LONG })).length, 4);
      assert.equal((await store.claimOutbox('u1', { limit: 10, owner: 'c', leaseMs: LONG })).length, 0);
      await store.ackOutbox(a.map((e) => e.id));
      assert.deepEqual(await store.countOutbox('u1'), { mine: 2, others: 1 });
      // Released claims are free at once.
      await store.releaseOutbox('b');
      assert.equal((await store.claimOutbox('u1', { limit: 10, owner: 'c', leaseMs: LONG })).length, 2);
      // An expired claim is free again.
      const lapsed = await store.claimOutbox('u2', { limit: 10, owner: 'a', leaseMs: 0 });
      assert.equal(lapsed.length, 1);
      assert.equal((await store.claimOutbox('u2', { limit: 10, owner: 'c', leaseMs: LONG })).length, 1);
    });

    it('keeps API keys by hash: create, find, list, revoke once', async (t) => {
      const store = await fresh(t);
      const created = await store.createApiKey({
        id: 'k1',
        hash: 'a'.repeat(64),
        label: 'ops',
        scopes: ['reset'],
        tenants: ['t1', 't2'],
      });
      assert.equal(created.revokedAt, null);
      await store.createApiKey({ id: 'k2', hash: 'b'.repeat(64), label: 'ci', scopes: [], tenants: [] });
      const found = await store.findApiKey('a'.repeat(64));
      assert.deepEqual(found, created);
      assert.equal(await store.findApiKey('c'.repeat(64)), undefined);
      assert.deepEqual((await store.listApiKeys()).map((k) => k.id).sort(), ['k1', 'k2']);
      assert.equal(await store.revokeApiKey('k1'), true);
      assert.equal(await store.revokeApiKey('k1'), false);
      assert.equal(await store.revokeApiKey('nope'), false);
      assert.ok((await store.findApiKey('a'.repeat(64)))!.revokedAt !== null);
      // The last use only moves forward: replicas record uses in any order.
      const later = new Date(Date.now() + 60_000).toISOString();
      await store.markApiKeyUsed('k2', later);
      await store.markApiKeyUsed('k2', new Date().toISOString());
      assert.equal(Date.parse((await store.findApiKey('b'.repeat(64)))!.lastUsedAt!), Date.parse(later));
      assert.equal((await store.findApiKey('a'.repeat(64)))!.lastUsedAt, null);
      await rejectsWith(
        store.createApiKey({ id: 'k3', hash: 'b'.repeat(64), label: 'dup', scopes: [], tenants: [] }),
        'CR_ERR_STATE_WRITE',
      );
    });

    it('lists jobs newest first, with their lease', async (t) => {
      const store = await fresh(t);
      const held = await store.openJob({ jobId: 'one', settings: { n: 1 }, leaseMs: LONG });
      const done = await store.openJob({ jobId: 'two', settings: { n: 2 }, leaseMs: LONG });
      await done.finish(true);
      await done.release();
      const jobs = await store.listJobs();
      assert.deepEqual(jobs.map((j) => j.jobId).sort(), ['one', 'two']);
      const one = jobs.find((j) => j.jobId === 'one')!;
      const two = jobs.find((j) => j.jobId === 'two')!;
      assert.deepEqual(one.settings, { n: 1 });
      assert.ok(one.lease !== null && one.lease.pid > 0);
      assert.equal(two.lease, null);
      assert.equal(two.finished, true);
      assert.equal((await store.listJobs({ limit: 1 })).length, 1);
      const rest = await store.listJobs({ after: jobs[0]!.jobId });
      assert.deepEqual(
        rest.map((j) => j.jobId),
        [jobs[1]!.jobId],
      );
      await held.release();
    });

    it("keeps the service's jobs: create, update, get, list newest first by tenant and state, in pages", async (t) => {
      const store = await fresh(t);
      const job = (id: string, tenant: string): ServiceJobRecord => ({
        id,
        tenant,
        state: 'queued',
        createdAt: '2026-01-01T00:00:00.000Z',
        updatedAt: '2026-01-01T00:00:00.000Z',
        request: { fields: { tenant }, total: 3 },
        progress: { counts: { total: 3 } },
        idempotency: null,
      });
      // Created in the same millisecond: the order they were created in still holds.
      for (const [id, tenant] of [
        ['j1', 'acme'],
        ['j2', 'beta'],
        ['j3', 'acme'],
        ['j4', 'acme'],
      ] as const)
        assert.deepEqual(await store.createServiceJob(job(id, tenant)), job(id, tenant));
      assert.equal(await store.updateServiceJob('j3', { state: 'succeeded', progress: { done: 3 } }), true);
      assert.equal(await store.updateServiceJob('nope', { state: 'failed', progress: {} }), false);
      // A conditional update writes nothing unless the state is one of `from`.
      const guarded = { state: 'cancelled', progress: { gone: true }, from: ['queued', 'running'] };
      assert.equal(await store.updateServiceJob('j3', guarded), false);
      assert.equal((await store.getServiceJob('j3'))?.state, 'succeeded');
      assert.deepEqual((await store.getServiceJob('j3'))?.progress, { done: 3 });
      assert.equal(await store.updateServiceJob('j3', { ...guarded, from: ['succeeded'] }), true);
      assert.equal((await store.getServiceJob('j3'))?.state, 'cancelled');
      await store.updateServiceJob('j3', { state: 'succeeded', progress: { done: 3 } });
      const j3 = await store.getServiceJob('j3');
      assert.equal(j3?.state, 'succeeded');
      assert.deepEqual(j3?.progress, { done: 3 });
      assert.deepEqual(j3?.request, { fields: { tenant: 'acme' }, total: 3 });
      assert.ok(j3 !== undefined && j3.updatedAt > j3.createdAt);
      assert.equal(await store.getServiceJob('nope'), undefined);
      const ids = async (filter: Parameters<Store['listServiceJobs']>[0]): Promise<string[]> =>
        (await store.listServiceJobs(filter)).map((j) => j.id);
      assert.deepEqual(await ids({ limit: 10 }), ['j4', 'j3', 'j2', 'j1']);
      assert.deepEqual(await ids({ limit: 10, tenants: [] }), ['j4', 'j3', 'j2', 'j1']);
      assert.deepEqual(await ids({ limit: 10, tenants: ['acme'] }), ['j4', 'j3', 'j1']);
      assert.deepEqual(await ids({ limit: 10, tenants: ['acme', 'beta'], state: 'queued' }), [
        'j4',
        'j2',
        'j1',
      ]);
      assert.deepEqual(await ids({ limit: 2 }), ['j4', 'j3']);
      assert.deepEqual(await ids({ limit: 2, after: 'j3' }), ['j2', 'j1']);
      assert.deepEqual(await ids({ limit: 2, after: 'j3', tenants: ['acme'] }), ['j1']);
      assert.deepEqual(await ids({ limit: 2, after: 'nope' }), []);
      assert.deepEqual(await store.countServiceJobs(), { queued: 3, succeeded: 1 });
      await rejectsWith(store.createServiceJob(job('j1', 'acme')), 'CR_ERR_STATE_WRITE');
    });

    it('keeps one service job per Idempotency-Key and API key: a second create returns the first', async (t) => {
      const store = await fresh(t);
      const job = (id: string, keyId: string, requestHash: string): ServiceJobRecord => ({
        id,
        tenant: 'acme',
        state: 'queued',
        createdAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
        request: {},
        progress: {},
        idempotency: { keyId, key: 'idem-1', requestHash },
      });
      const first = await store.createServiceJob(job('a', 'key_1', 'h1'));
      assert.equal(first.id, 'a');
      const again = await store.createServiceJob(job('b', 'key_1', 'h2'));
      assert.equal(again.id, 'a', 'the first job is returned');
      assert.deepEqual(again.idempotency, { keyId: 'key_1', key: 'idem-1', requestHash: 'h1' });
      assert.equal(await store.getServiceJob('b'), undefined, 'nothing was written');
      // Another API key's Idempotency-Key is its own.
      assert.equal((await store.createServiceJob(job('c', 'key_2', 'h1'))).id, 'c');
      assert.equal((await store.findServiceJobByIdempotencyKey('key_1', 'idem-1'))?.id, 'a');
      assert.equal((await store.findServiceJobByIdempotencyKey('key_2', 'idem-1'))?.id, 'c');
      assert.equal(await store.findServiceJobByIdempotencyKey('key_3', 'idem-1'), undefined);
      // Jobs without a key are never taken for one another.
      await store.createServiceJob({ ...job('d', 'x', 'h'), idempotency: null });
      await store.createServiceJob({ ...job('e', 'x', 'h'), idempotency: null });
      assert.equal((await store.listServiceJobs({ limit: 10 })).length, 4);
    });

    chunkContract(fresh);

    it('refuses work once closed', async () => {
      const store = await open();
      await store.close();
      await store.close();
      await assert.rejects(store.verifyAudit(), (err: unknown) => isCognigyResetError(err));
      await assert.rejects(store.openJob({ jobId: 'j', settings: {}, leaseMs: LONG }), (err: unknown) =>
        isCognigyResetError(err),
      );
      await assert.rejects(store.countOutbox('u'), (err: unknown) => isCognigyResetError(err));
      await assert.rejects(store.listServiceJobs({ limit: 1 }), (err: unknown) => isCognigyResetError(err));
      await assert.rejects(store.claimJobChunk({ owner: 'o', leaseMs: LONG }), (err: unknown) =>
        isCognigyResetError(err),
      );
      await assert.rejects(store.ledgerCounts(['j']), (err: unknown) => isCognigyResetError(err));
      await assert.rejects(
        (async () => {
          for await (const text of store.jobChunkOutcomes('j')) assert.fail(text);
        })(),
        (err: unknown) => isCognigyResetError(err),
      );
    });
  });
}

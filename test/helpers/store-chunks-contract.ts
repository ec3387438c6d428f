/**
 * The store port's contract for a service job's chunks and the ledgers they run as: claims with leases,
 * heartbeats, finishing, release, reopen, the summary, the outcomes, ledger counts. `storeContract` runs
 * it on each backend, inside its own suite.
 */
import * as assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';
import { blankOutcome, type ResetOutcome } from '../../src/reset/outcome.js';
import type { ClaimedJobChunk, JobChunkInput, Store } from '../../src/store/port.js';
import { serviceJobRecord } from './service-job.js';

const LONG = 600_000;

/** Records a service job in `state`, and its `n` chunks of two sessions each. */
async function jobWithChunks(
  store: Store,
  id: string,
  state: string,
  n: number,
  tenant = 't',
): Promise<JobChunkInput[]> {
  await store.createServiceJob(serviceJobRecord(id, state, tenant));
  const chunks = Array.from({ length: n }, (_, i) => ({
    chunkNo: i,
    firstIndex: 2 * i,
    count: 2,
    targets: `{"sessionId":"${id}-${2 * i}"}\n{"sessionId":"${id}-${2 * i + 1}"}\n`,
  }));
  await store.addJobChunks(id, chunks);
  return chunks;
}

const key = (c: ClaimedJobChunk | undefined): string =>
  c === undefined ? 'none' : `${c.jobId}#${c.chunkNo}`;

function outcome(sessionId: string, failed = false): ResetOutcome {
  const o = blankOutcome(sessionId, failed ? 'failed' : 'reset', ['flow'], []);
  o.verified = !failed;
  if (failed) o.error = { code: 'CR_ERR_TRANSPORT_REST_TIMEOUT', message: 'timed out' };
  return o;
}

export function chunkContract(fresh: (t: TestContext) => Promise<Store>): void {
  it('claims chunks oldest job first, then by number, one owner each, of queued or running jobs only', async (t) => {
    const store = await fresh(t);
    const a = await jobWithChunks(store, 'job-a', 'queued', 2);
    await jobWithChunks(store, 'job-b', 'running', 1);
    await jobWithChunks(store, 'job-c', 'succeeded', 1);
    await jobWithChunks(store, 'job-d', 'queued', 1);
    // Written again: a chunk that exists is left as it is.
    await store.addJobChunks('job-a', [{ chunkNo: 0, firstIndex: 9, count: 9, targets: 'other\n' }]);
    const first = await store.claimJobChunk({ owner: 'r1', leaseMs: LONG });
    assert.deepEqual(first, { jobId: 'job-a', ...a[0]!, claims: 0, previousOwner: null, outcomes: '' });
    assert.equal(key(await store.claimJobChunk({ owner: 'r2', leaseMs: LONG })), 'job-a#1');
    assert.equal(key(await store.claimJobChunk({ owner: 'r2', leaseMs: LONG, jobs: ['job-d'] })), 'job-d#0');
    assert.equal(key(await store.claimJobChunk({ owner: 'r1', leaseMs: LONG, jobs: ['job-c'] })), 'none');
    assert.equal(key(await store.claimJobChunk({ owner: 'r1', leaseMs: LONG })), 'job-b#0');
    // Every chunk is held, and the succeeded job's is never handed out.
    assert.equal(key(await store.claimJobChunk({ owner: 'r3', leaseMs: LONG })), 'none');
    assert.equal(key(await store.claimJobChunk({ owner: 'r1', leaseMs: LONG })), 'none');
    assert.deepEqual(await store.jobChunkSummary('job-a'), {
      chunks: 2,
      done: 0,
      doneChunks: [],
      leased: 2,
      owners: ['r1', 'r2'],
      error: null,
    });
  });

  it("claims only chunks of the tenants it is told: a replica without a job's tenant leaves it to others", async (t) => {
    const store = await fresh(t);
    await jobWithChunks(store, 'job-x', 'running', 1, 'x');
    await jobWithChunks(store, 'job-y', 'running', 1, 'y');
    assert.equal(key(await store.claimJobChunk({ owner: 'o', leaseMs: LONG, tenants: ['y'] })), 'job-y#0');
    assert.equal(await store.claimJobChunk({ owner: 'o', leaseMs: LONG, tenants: ['y', 'z'] }), undefined);
    assert.equal(await store.claimJobChunk({ owner: 'o', leaseMs: LONG, tenants: [] }), undefined);
    assert.equal(key(await store.claimJobChunk({ owner: 'p', leaseMs: LONG, tenants: ['x'] })), 'job-x#0');
  });

  it('takes an expired chunk claim over: the new owner learns of the old, the old one stops', async (t) => {
    const store = await fresh(t);
    await jobWithChunks(store, 'job', 'running', 1);
    // A lease of 0 ms has expired as soon as it is written; nobody took it yet, so it is still held.
    assert.equal((await store.claimJobChunk({ owner: 'lapsed', leaseMs: 0 }))?.claims, 0);
    assert.equal(
      await store.heartbeatJobChunk('job', 0, { owner: 'lapsed', leaseMs: 0, outcomes: 'a\n' }),
      true,
    );
    const taken = await store.claimJobChunk({ owner: 'taker', leaseMs: LONG });
    assert.equal(key(taken), 'job#0');
    assert.equal(taken?.claims, 1);
    assert.equal(taken?.previousOwner, 'lapsed');
    // What the lapsed owner wrote comes with the claim: the taker does not list those sessions again.
    assert.equal(taken?.outcomes, 'a\n');
    assert.equal(
      await store.heartbeatJobChunk('job', 0, { owner: 'lapsed', leaseMs: LONG, outcomes: 'x\n' }),
      false,
    );
    assert.equal(
      await store.finishJobChunk('job', 0, { owner: 'lapsed', outcomes: 'x\n', error: null }),
      false,
    );
    assert.equal(
      await store.heartbeatJobChunk('job', 0, { owner: 'taker', leaseMs: LONG, outcomes: '' }),
      true,
    );
    // Released: free at once, and the next owner still learns the chunk was started.
    await store.releaseJobChunks('taker');
    assert.equal((await store.jobChunkSummary('job')).leased, 0);
    const next = await store.claimJobChunk({ owner: 'next', leaseMs: LONG });
    assert.equal(key(next), 'job#0');
    assert.equal(next?.claims, 2);
    assert.equal(next?.previousOwner, null);
    assert.equal(
      await store.heartbeatJobChunk('job', 0, { owner: 'taker', leaseMs: LONG, outcomes: '' }),
      false,
    );
    assert.equal(await store.finishJobChunk('job', 0, { owner: 'next', outcomes: 'b\n', error: null }), true);
    assert.equal(
      await store.heartbeatJobChunk('job', 0, { owner: 'next', leaseMs: LONG, outcomes: '' }),
      false,
    );
    assert.equal(
      await store.finishJobChunk('job', 0, { owner: 'next', outcomes: 'c\n', error: null }),
      false,
    );
    const texts: string[] = [];
    for await (const text of store.jobChunkOutcomes('job')) texts.push(text);
    assert.equal(texts.join(''), 'a\nb\n', 'what the lost owner appended is kept, and nothing after');
  });

  it('takes a chunk given back for one never claimed: free at once, its claim not counted', async (t) => {
    const store = await fresh(t);
    await jobWithChunks(store, 'job', 'running', 1);
    assert.equal((await store.claimJobChunk({ owner: 'r1', leaseMs: LONG }))?.claims, 0);
    assert.equal(await store.giveBackJobChunk('job', 0, 'r1'), true);
    assert.equal((await store.jobChunkSummary('job')).leased, 0);
    const next = await store.claimJobChunk({ owner: 'r2', leaseMs: LONG });
    assert.equal(key(next), 'job#0');
    assert.equal(next?.claims, 0, 'the claim given back is not counted');
    assert.equal(next?.previousOwner, null);
    // Only its owner gives a chunk back.
    assert.equal(await store.giveBackJobChunk('job', 0, 'r1'), false);
    // A chunk taken over keeps the count of the claims before the one given back.
    await store.releaseJobChunks('r2');
    assert.equal((await store.claimJobChunk({ owner: 'r3', leaseMs: LONG }))?.claims, 1);
    assert.equal(await store.giveBackJobChunk('job', 0, 'r3'), true);
    assert.equal((await store.claimJobChunk({ owner: 'r4', leaseMs: LONG }))?.claims, 1);
    assert.equal(await store.finishJobChunk('job', 0, { owner: 'r4', outcomes: '', error: null }), true);
    assert.equal(await store.giveBackJobChunk('job', 0, 'r4'), false, 'a finished chunk stays finished');
  });

  it("finishes chunks, sums them up, streams their outcomes in order, and reopens a job's chunks", async (t) => {
    const store = await fresh(t);
    await jobWithChunks(store, 'job', 'running', 7);
    const claimed: number[] = [];
    for (let i = 0; i < 7; i++)
      claimed.push((await store.claimJobChunk({ owner: i < 4 ? 'r1' : 'r2', leaseMs: LONG }))!.chunkNo);
    assert.deepEqual(claimed, [0, 1, 2, 3, 4, 5, 6]);
    for (const no of [6, 5, 3, 2, 1, 0]) {
      const owner = no < 4 ? 'r1' : 'r2';
      const lines = `{"i":${no},"n":1}\n`;
      assert.equal(await store.heartbeatJobChunk('job', no, { owner, leaseMs: LONG, outcomes: lines }), true);
      const error = no === 5 || no === 2 ? { code: `CR_ERR_${no}`, message: `chunk ${no}` } : null;
      const last = no === 1 ? '' : `{"i":${no},"n":2}\n`;
      assert.equal(await store.finishJobChunk('job', no, { owner, outcomes: last, error }), true);
    }
    assert.deepEqual(await store.jobChunkSummary('job'), {
      chunks: 7,
      done: 6,
      doneChunks: [0, 1, 2, 3, 5, 6],
      leased: 1,
      owners: ['r2'],
      error: { code: 'CR_ERR_2', message: 'chunk 2' },
    });
    const texts: string[] = [];
    for await (const text of store.jobChunkOutcomes('job')) texts.push(text);
    const expected = [0, 1, 2, 3, 5, 6].map((no) =>
      no === 1 ? '{"i":1,"n":1}\n' : `{"i":${no},"n":1}\n{"i":${no},"n":2}\n`,
    );
    assert.deepEqual(texts.join(''), expected.join(''));
    assert.ok(
      texts.every((text) => text !== ''),
      'no empty item',
    );
    assert.deepEqual(await store.jobChunkSummary('nope'), {
      chunks: 0,
      done: 0,
      doneChunks: [],
      leased: 0,
      owners: [],
      error: null,
    });

    await store.reopenJobChunks('job');
    assert.deepEqual(await store.jobChunkSummary('job'), {
      chunks: 7,
      done: 0,
      doneChunks: [],
      leased: 0,
      owners: [],
      error: null,
    });
    const again = await store.claimJobChunk({ owner: 'r3', leaseMs: LONG });
    assert.equal(key(again), 'job#0');
    assert.equal(again?.claims, 1, 'the claims before the reopen count');
    assert.equal(again?.previousOwner, null);
    const kept: string[] = [];
    for await (const text of store.jobChunkOutcomes('job')) kept.push(text);
    assert.equal(kept.join(''), expected.join(''), 'the outcomes are kept');
  });

  it('counts the ledgers of several jobs together: outcomes, verified, error codes', async (t) => {
    const store = await fresh(t);
    for (const jobId of ['chunk-0', 'chunk-1', 'other']) {
      await (await store.openJob({ jobId, settings: {}, leaseMs: LONG })).release();
    }
    const writer = await store.writer();
    // s1 failed, then was reset by a later attempt: its latest outcome counts.
    await writer.append({ outcome: outcome('s1', true), job: { jobId: 'chunk-0', index: 0 } });
    await Promise.all([
      writer.append({ outcome: outcome('s1'), job: { jobId: 'chunk-0', index: 0 } }),
      writer.append({ outcome: outcome('s2', true), job: { jobId: 'chunk-0', index: 1 } }),
      writer.append({ outcome: outcome('s3'), job: { jobId: 'chunk-1', index: 2 } }),
      writer.append({ outcome: outcome('s4', true), job: { jobId: 'chunk-1', index: 3 } }),
      writer.append({ outcome: outcome('s9'), job: { jobId: 'other', index: 0 } }),
    ]);
    await writer.close();
    assert.deepEqual(await store.ledgerCounts(['chunk-0', 'chunk-1']), {
      outcomes: { reset: 2, failed: 2 },
      verified: 2,
      errors: { CR_ERR_TRANSPORT_REST_TIMEOUT: 2 },
    });
    assert.deepEqual(await store.ledgerCounts(['chunk-1', 'nope']), {
      outcomes: { reset: 1, failed: 1 },
      verified: 1,
      errors: { CR_ERR_TRANSPORT_REST_TIMEOUT: 1 },
    });
    assert.deepEqual(await store.ledgerCounts([]), { outcomes: {}, verified: 0, errors: {} });
  });
}

/**
 * The PostgreSQL store: the port's contract, unchanged, then what sharing one database adds — two stores
 * (two pools, as two replicas) extending one audit chain at full speed, outbox claims that never hand an
 * event to two owners, job leases across stores — and tampering with SQL caught by verify.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditContext } from '../src/audit/record.js';
import { isCognigyResetError } from '../src/errors.js';
import { blankOutcome } from '../src/reset/outcome.js';
import { openStore, type OutcomeWriter, type Store } from '../src/store/index.js';
import { testDatabase } from './helpers/postgres.js';
import { storeContract } from './helpers/store-contract.js';
import { withDeadline } from './helpers/ws.js';

const db = await testDatabase('store');

const AUDIT: AuditContext = {
  actor: 'os:test',
  reason: null,
  jobId: 'j',
  tenant: 't',
  botId: 'b',
  transport: 'runtime-ws',
  notCleared: [],
};

const codeOf = (code: string) => (err: unknown) => isCognigyResetError(err) && err.code === code;

/** Appends one audited outcome a session through `writer`, all at once (failed where `failed` says). */
function appendTo(
  writer: OutcomeWriter,
  ids: string[],
  failed: (i: number) => boolean = () => false,
): Promise<void[]> {
  return Promise.all(
    ids.map((id, i) => {
      const outcome = blankOutcome(id, failed(i) ? 'failed' : 'reset', ['flow'], []);
      if (failed(i)) outcome.error = { code: 'CR_ERR_TRANSPORT_REST_TIMEOUT', message: 'timed out' };
      return writer.append({ outcome, audit: AUDIT });
    }),
  );
}

async function appendAll(store: Store, ids: string[], failed?: (i: number) => boolean): Promise<void> {
  const writer = await store.writer();
  try {
    await appendTo(writer, ids, failed);
  } finally {
    await writer.close();
  }
}

const range = (prefix: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);

if (db !== undefined) {
  storeContract('postgres', async () => openStore(await db.freshSchema()));
  storeContract('postgres, committing in this thread', async () =>
    openStore(await db.freshSchema(), { writerThread: false }),
  );

  describe('the PostgreSQL store shared by several processes', () => {
    it('keeps one chain when two stores append at full speed together: verify passes, one record per append', async () => {
      const url = await db.freshSchema();
      const [a, b] = await Promise.all([openStore(url), openStore(url, { writerThread: false })]);
      try {
        // Both writers hold their connections before either appends: then each appends as fast as it
        // can, in rounds, so batches of both are in flight together.
        const [wa, wb] = await Promise.all([a.writer(), b.writer()]);
        const rounds = 6;
        const perRound = 500;
        for (let r = 0; r < rounds; r++) {
          await Promise.all([appendTo(wa, range(`a${r}`, perRound)), appendTo(wb, range(`b${r}`, perRound))]);
        }
        await Promise.all([wa.close(), wb.close()]);
        const n = rounds * perRound;
        const verdict = await a.verifyAudit();
        assert.equal(verdict.ok, true, JSON.stringify(verdict.problem));
        assert.equal(verdict.records, 2 * n);
        assert.equal(verdict.headSeq, 2 * n);
        const seen = new Map<string, number>();
        for await (const r of b.auditRecords()) seen.set(r.sessionId, (seen.get(r.sessionId) ?? 0) + 1);
        assert.equal(seen.size, 2 * n);
        assert.ok([...seen.values()].every((count) => count === 1));
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it("links a batch after another store's, appended since this writer's last batch: nothing is lost or forked", async () => {
      const url = await db.freshSchema();
      const [a, b] = await Promise.all([openStore(url), openStore(url, { writerThread: false })]);
      try {
        const [wa, wb] = await Promise.all([a.writer(), b.writer()]);
        // Each writer's next batch expects the head where it left it; the other store moves it between.
        for (const [writer, id] of [
          [wa, 'a-1'],
          [wa, 'a-2'],
          [wb, 'b-1'],
          [wa, 'a-3'],
          [wb, 'b-2'],
          [wb, 'b-3'],
          [wa, 'a-4'],
        ] as const) {
          await appendTo(writer, [id]);
        }
        await Promise.all([wa.close(), wb.close()]);
        const verdict = await b.verifyAudit();
        assert.equal(verdict.ok, true, JSON.stringify(verdict.problem));
        const order: string[] = [];
        for await (const r of a.auditRecords()) order.push(r.sessionId);
        assert.deepEqual(order, ['a-1', 'a-2', 'b-1', 'a-3', 'b-2', 'b-3', 'a-4']);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('never hands an outbox event to two owners claiming at once from two stores, and loses none', async () => {
      const url = await db.freshSchema();
      const [a, b] = await Promise.all([openStore(url), openStore(url)]);
      try {
        const writer = await a.writer();
        const keys = range('event', 400);
        await Promise.all(
          keys.map((key) => writer.append({ outbox: { key, urlSha256: 'u', payload: key } })),
        );
        await writer.close();
        const got = new Map<string, string[]>([
          ['a', []],
          ['b', []],
        ]);
        const drain = async (store: Store, owner: string): Promise<void> => {
          for (;;) {
            const events = await store.claimOutbox('u', { limit: 25, owner, leaseMs: 600_000 });
            if (events.length === 0) return;
            got.get(owner)!.push(...events.map((e) => e.key));
            await store.ackOutbox(events.map((e) => e.id));
          }
        };
        await Promise.all([drain(a, 'a'), drain(b, 'b')]);
        const all = [...got.get('a')!, ...got.get('b')!];
        assert.equal(new Set(all).size, all.length, 'an event went to two owners');
        assert.deepEqual(all.sort(), [...keys].sort());
        assert.deepEqual(await a.countOutbox('u'), { mine: 0, others: 0 });
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('never hands a job chunk to two replicas claiming at once from two stores, and leaves none', async () => {
      const url = await db.freshSchema();
      const [a, b] = await Promise.all([openStore(url), openStore(url)]);
      try {
        const now = new Date().toISOString();
        for (const id of ['job-1', 'job-2']) {
          await a.createServiceJob({
            id,
            tenant: 't',
            state: 'running',
            createdAt: now,
            updatedAt: now,
            request: {},
            progress: {},
            idempotency: null,
          });
          await a.addJobChunks(
            id,
            Array.from({ length: 100 }, (_, i) => ({
              chunkNo: i,
              firstIndex: i,
              count: 1,
              targets: `${id}\n`,
            })),
          );
        }
        const got: string[] = [];
        // Several claimers a store, so claims of one pool run side by side too.
        const drain = async (store: Store, owner: string): Promise<void> => {
          for (;;) {
            const chunk = await store.claimJobChunk({ owner, leaseMs: 600_000 });
            if (chunk === undefined) return;
            assert.equal(chunk.claims, 0);
            got.push(`${chunk.jobId}#${chunk.chunkNo}`);
            assert.equal(
              await store.finishJobChunk(chunk.jobId, chunk.chunkNo, { owner, outcomes: 'x\n', error: null }),
              true,
            );
          }
        };
        await Promise.all([
          ...[1, 2, 3].map((i) => drain(a, `a${i}`)),
          ...[1, 2, 3].map((i) => drain(b, `b${i}`)),
        ]);
        assert.equal(new Set(got).size, got.length, 'a chunk went to two owners');
        assert.equal(got.length, 200);
        for (const id of ['job-1', 'job-2']) {
          const summary = await b.jobChunkSummary(id);
          assert.deepEqual([summary.chunks, summary.done, summary.leased], [100, 100, 0]);
        }
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it("refuses a job another store's run holds, and takes it over once that lease expired", async () => {
      const url = await db.freshSchema();
      const [a, b] = await Promise.all([openStore(url), openStore(url)]);
      try {
        const held = await a.openJob({ jobId: 'shared', settings: {}, leaseMs: 600_000 });
        await assert.rejects(
          b.openJob({ jobId: 'shared', settings: {}, leaseMs: 1000 }),
          codeOf('CR_ERR_STATE_JOB_RUNNING'),
        );
        await held.release();
        const lapsed = await a.openJob({ jobId: 'shared', settings: {}, leaseMs: 0 });
        const taker = await b.openJob({ jobId: 'shared', settings: {}, leaseMs: 600_000 });
        assert.equal(taker.resumed, true);
        await assert.rejects(lapsed.heartbeat(), codeOf('CR_ERR_STATE_JOB_LOST'));
        await taker.release();
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('streams a long log a page at a time, and an export stopped early gives its connection back', async () => {
      const store = await openStore(await db.freshSchema());
      await appendAll(store, range('s', 2500));
      let count = 0;
      let last = 0;
      for await (const r of store.auditRecords()) {
        assert.equal(r.seq, last + 1);
        last = r.seq;
        count++;
      }
      assert.equal(count, 2500);
      for await (const r of store.auditRecords({ sessionId: 's-7' })) {
        assert.equal(r.seq, 7);
        break;
      }
      // The stopped export ended its snapshot: the store closes without waiting for it.
      await withDeadline(store.close(), 10_000, 'close after a stopped export');
    });
  });

  describe('audit verify on a PostgreSQL store altered with SQL', () => {
    const tampering: [string, string, number, RegExp][] = [
      [
        'an edited field',
        `UPDATE audit_records SET record = replace(record, '"failed",false,"CR_ERR_TRANSPORT_REST_TIMEOUT"', '"reset",true,null') WHERE seq = 5`,
        5,
        /altered/,
      ],
      ['a deleted row', 'DELETE FROM audit_records WHERE seq = 4', 5, /sequence jumps from 3 to 5/],
      [
        'two swapped rows',
        'UPDATE audit_records SET seq = -1 WHERE seq = 3; UPDATE audit_records SET seq = 3 WHERE seq = 4; UPDATE audit_records SET seq = 4 WHERE seq = -1',
        3,
        /prevHash|altered/,
      ],
      ['a truncated log', 'DELETE FROM audit_records WHERE seq > 6', 7, /truncated/],
      [
        'a record overwritten with garbage',
        "UPDATE audit_records SET record = 'garbage' WHERE seq = 2",
        2,
        /not readable/,
      ],
    ];
    for (const [what, sql, firstBad, pattern] of tampering) {
      it(`names the first bad record after ${what}`, async () => {
        const url = await db.freshSchema();
        const store = await openStore(url);
        try {
          await appendAll(store, range('s', 10), (i) => i === 4);
          assert.equal((await store.verifyAudit()).ok, true);
          await db.sql(sql, [], url);
          const verdict = await store.verifyAudit();
          assert.equal(verdict.ok, false);
          assert.equal(verdict.problem?.seq, firstBad);
          assert.match(verdict.problem.problem, pattern);
        } finally {
          await store.close();
        }
      });
    }
  });
}

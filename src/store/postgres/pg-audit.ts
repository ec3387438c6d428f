/**
 * Reading the PostgreSQL store's audit chain: every record in seq order, from a cursor in one
 * REPEATABLE READ snapshot, a page at a time, so memory stays flat however long the log, and a run
 * appending meanwhile cannot make the head and the records disagree.
 */
import type { Pool, PoolClient } from 'pg';
import type { AuditRecord } from '../../audit/chain.js';
import { ChainWalk, exported, storedRecord, type StoredRecord } from '../audit-walk.js';
import type { AuditFilter, VerifyResult } from '../port.js';
import { pgStoreError } from './errors.js';

/** Records fetched at a time. */
const PAGE = 1000;

/**
 * Calls `read` on a connection inside a read-only snapshot, and ends both however it ends (a consumer
 * that stops early included).
 */
async function* inSnapshot<T>(
  pool: Pool,
  shown: string,
  read: (client: PoolClient) => AsyncGenerator<T>,
): AsyncGenerator<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw pgStoreError(shown, 'reading the audit chain of', err, 'CR_ERR_STATE_OPEN');
  }
  client.on('error', () => undefined);
  let committed = false;
  let broken = false;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    yield* read(client);
    await client.query('COMMIT');
    committed = true;
  } catch (err) {
    broken = true;
    throw pgStoreError(shown, 'reading the audit chain of', err, 'CR_ERR_STATE_OPEN');
  } finally {
    // A consumer that stopped early ends the snapshot here; a connection that failed is not reused.
    if (!committed) await client.query('ROLLBACK').catch(() => (broken = true));
    client.release(broken);
  }
}

/** Every stored record, unreadable ones included, in seq order. */
async function* storedRecords(client: PoolClient): AsyncGenerator<StoredRecord> {
  await client.query(
    'DECLARE audit_rows NO SCROLL CURSOR FOR SELECT seq, record, hash FROM audit_records ORDER BY seq',
  );
  for (;;) {
    const page = await client.query<{ seq: string; record: string; hash: string }>(
      `FETCH ${PAGE} FROM audit_rows`,
    );
    for (const row of page.rows) yield storedRecord(Number(row.seq), row.record, row.hash);
    if (page.rows.length < PAGE) return;
  }
}

/** The records matching `filter`, in chain order. An unreadable record stops the stream. */
export function pgAuditRecords(pool: Pool, shown: string, filter: AuditFilter): AsyncGenerator<AuditRecord> {
  return inSnapshot(pool, shown, async function* (client) {
    for await (const stored of storedRecords(client)) {
      const record = exported(stored, filter);
      if (record !== undefined) yield record;
    }
  });
}

/** Walks the whole chain from genesis in one snapshot: the head and the records read together. */
export async function pgVerifyAudit(
  pool: Pool,
  shown: string,
  anchor: string | undefined,
): Promise<VerifyResult> {
  const verdicts = inSnapshot(pool, shown, async function* (client) {
    const headRow = await client.query<{ seq: string; hash: string }>(
      'SELECT seq, hash FROM audit_head WHERE id = 1',
    );
    const row = headRow.rows[0];
    const head = row === undefined ? undefined : { seq: Number(row.seq), hash: row.hash };
    const walk = new ChainWalk(anchor);
    for await (const stored of storedRecords(client)) {
      const problem = walk.feed(stored);
      if (problem !== undefined) {
        yield walk.result(head, problem);
        return;
      }
    }
    yield walk.result(head, undefined);
  });
  for await (const verdict of verdicts) return verdict;
  throw new Error('unreachable: a walk always ends with a verdict');
}

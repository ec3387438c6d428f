/** Reading the audit log from the state file: streamed rows, and the chain verified in one snapshot. */
import { prepared } from './statements.js';
import type { AuditRecord } from '../../audit/chain.js';
import { ChainWalk, exported, storedRecord, type StoredRecord } from '../audit-walk.js';
import type { AuditFilter, VerifyResult } from '../port.js';
import type { StateDb } from './state-file.js';

export type { UnreadableRecord } from '../audit-walk.js';

interface Row {
  seq: number;
  record: string;
  hash: string;
}

/** Records read at a time. */
const PAGE = 1000;

/**
 * Streams every stored record in chain order, unreadable ones included, up to the last one stored when
 * it began. It reads a page at a time and holds no statement open in between: an export waiting for a
 * slow reader does not keep a read snapshot that stops the WAL of a run writing meanwhile from being
 * checkpointed. The log is append-only, so the pages join into one consistent prefix; inside a
 * transaction (`audit verify`) they are one snapshot anyway.
 */
export function* storedRecords(db: StateDb): Generator<StoredRecord> {
  const { last } = prepared(db, 'SELECT max(seq) AS last FROM audit_records').get() as {
    last: number | null;
  };
  if (last === null) return;
  const page = prepared(
    db,
    `SELECT seq, record, hash FROM audit_records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ${PAGE}`,
  );
  // From -Infinity: a row inserted with seq 0 or below is read (and named) too.
  for (let after = -Infinity; ;) {
    const rows = page.all(after, last) as Row[];
    for (const { seq, record, hash } of rows) yield storedRecord(seq, record, hash);
    if (rows.length < PAGE) return;
    after = rows.at(-1)!.seq;
  }
}

/** Streams the records that match `filter`, in chain order. An unreadable record stops the stream. */
export function* auditRecords(db: StateDb, filter: AuditFilter = {}): Generator<AuditRecord> {
  for (const stored of storedRecords(db)) {
    const record = exported(stored, filter);
    if (record !== undefined) yield record;
  }
}

/**
 * Walks the whole chain from genesis. Any edited field, removed or reordered row breaks a link; a
 * truncated tail no longer reaches the head anchor that each batch updates in the same transaction.
 */
export function verifyAudit(db: StateDb, anchor?: string): VerifyResult {
  // One read transaction, one snapshot: a run committing meanwhile must not make the head and the
  // records disagree (a false alarm while a job runs).
  return db.transaction(() => verifySnapshot(db, anchor))();
}

function verifySnapshot(db: StateDb, anchor: string | undefined): VerifyResult {
  const head = prepared(db, 'SELECT seq, hash FROM audit_head WHERE id = 1').get() as
    { seq: number; hash: string } | undefined;
  const walk = new ChainWalk(anchor);
  for (const record of storedRecords(db)) {
    const problem = walk.feed(record);
    if (problem !== undefined) return walk.result(head, problem);
  }
  return walk.result(head, undefined);
}

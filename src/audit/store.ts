/** Reading the audit log: streamed rows, chain verification, and filtered export. */
import type { StateDb } from '../state/state-file.js';
import { CognigyResetError } from '../errors.js';
import { terminalSafe } from '../util/printable.js';
import { type AuditRecord, ChainChecker, type ChainProblem, GENESIS_HASH, parseCanonical } from './chain.js';

export interface AuditFilter {
  sessionId?: string | undefined;
  jobId?: string | undefined;
  /** ISO date-times, inclusive / exclusive. */
  since?: string | undefined;
  until?: string | undefined;
  outcome?: string | undefined;
}

interface Row {
  seq: number;
  record: string;
  hash: string;
}

/** A stored record that is not a canonical record at all: `audit verify` names it. */
export interface UnreadableRecord {
  seq: number;
  unreadable: true;
}

function matches(r: AuditRecord, f: AuditFilter): boolean {
  return (
    (f.sessionId === undefined || r.sessionId === f.sessionId) &&
    (f.jobId === undefined || r.jobId === f.jobId) &&
    (f.since === undefined || r.ts >= f.since) &&
    (f.until === undefined || r.ts < f.until) &&
    (f.outcome === undefined || r.outcome === f.outcome)
  );
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
export function* storedRecords(db: StateDb): Generator<AuditRecord | UnreadableRecord> {
  const { last } = db.prepare('SELECT max(seq) AS last FROM audit_records').get() as { last: number | null };
  if (last === null) return;
  const page = db.prepare(
    `SELECT seq, record, hash FROM audit_records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ${PAGE}`,
  );
  // From -Infinity: a row inserted with seq 0 or below is read (and named) too.
  for (let after = -Infinity; ;) {
    const rows = page.all(after, last) as Row[];
    for (const { seq, record, hash } of rows)
      yield parseCanonical(seq, record, hash) ?? { seq, unreadable: true };
    if (rows.length < PAGE) return;
    after = rows.at(-1)!.seq;
  }
}

/** Streams the records that match `filter`, in chain order. An unreadable record stops the stream. */
export function* auditRecords(db: StateDb, filter: AuditFilter = {}): Generator<AuditRecord> {
  for (const record of storedRecords(db)) {
    if ('unreadable' in record) {
      throw new CognigyResetError(
        'CR_ERR_STATE_CORRUPT',
        `audit record ${record.seq} is not a readable record: run \`cognigy-reset audit verify\``,
      );
    }
    if (matches(record, filter)) yield record;
  }
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  headSeq: number;
  headHash: string;
  /** With an anchor: the seq of the record that carries it. */
  anchorSeq: number | undefined;
  problem: ChainProblem | null;
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
  const head = db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as
    { seq: number; hash: string } | undefined;
  const checker = new ChainChecker({ prevHash: GENESIS_HASH, seq: 1 }, false, anchor);
  const result = (problem: ChainProblem | null): VerifyResult => ({
    ok: problem === null,
    records: checker.count,
    headSeq: head?.seq ?? 0,
    headHash: head?.hash ?? GENESIS_HASH,
    anchorSeq: checker.anchorSeq,
    problem,
  });
  for (const record of storedRecords(db)) {
    const problem =
      'unreadable' in record
        ? { seq: record.seq, sessionId: null, problem: 'the record is not readable: it was altered' }
        : checker.check(record);
    if (problem !== undefined) return result(problem);
  }
  const lastSeq = checker.lastSeq ?? 0;
  if (head === undefined ? lastSeq !== 0 : head.seq !== lastSeq || head.hash !== checker.lastHash) {
    return result({
      seq: lastSeq + 1,
      sessionId: null,
      problem:
        head !== undefined && head.seq > lastSeq
          ? `the log ends at record ${lastSeq} but its head says ${head.seq}: records were truncated`
          : 'the head anchor does not match the last record',
    });
  }
  return result(checker.anchorProblem(false) ?? null);
}

const CSV_COLUMNS: (keyof AuditRecord)[] = [
  'seq',
  'ts',
  'actor',
  'reason',
  'jobId',
  'tenant',
  'botId',
  'sessionId',
  'transport',
  'cleared',
  'notCleared',
  'outcome',
  'verified',
  'errorCode',
  'attempts',
  'latencyMs',
  'requestId',
  'directiveHash',
  'prevHash',
  'hash',
];

/**
 * One cell. No raw character a line-based reader or a terminal could act on: the ones `terminalSafe`
 * escapes (C0 controls with tab, CR and LF, DEL, C1 controls, format characters such as bidi overrides,
 * line and paragraph separators, lone surrogates) are written as `\uXXXX`, and a backslash as `\\`, so
 * that every cell reads back unambiguously and a record is one line. A cell a spreadsheet would run as a
 * formula (starting with = + - @) is prefixed with `'`; one holding a quote or a comma is quoted.
 */
export function csvCell(value: AuditRecord[keyof AuditRecord]): string {
  if (value === null) return '';
  const text = terminalSafe((Array.isArray(value) ? value.join(' ') : String(value)).replace(/\\/g, '\\\\'));
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

export function csvLine(record: AuditRecord): string {
  return CSV_COLUMNS.map((column) => csvCell(record[column])).join(',');
}

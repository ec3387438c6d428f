/** Reading the audit log: streamed rows, chain verification, and filtered export. */
import type { StateDb } from '../state/state-file.js';
import { type AuditRecord, ChainChecker, type ChainProblem, GENESIS_HASH } from './chain.js';

interface Row {
  seq: number;
  ts: string;
  actor: string;
  reason: string | null;
  job_id: string | null;
  tenant: string;
  bot_id: string;
  session_id: string;
  transport: string;
  cleared: string;
  not_cleared: string;
  outcome: string;
  verified: number;
  error_code: string | null;
  attempts: number;
  latency_ms: number;
  request_id: string | null;
  directive_hash: string | null;
  prev_hash: string;
  hash: string;
}

function parseList(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.map(String) : [String(text)];
  } catch {
    return [text];
  }
}

export function toRecord(row: Row): AuditRecord {
  return {
    seq: row.seq,
    ts: row.ts,
    actor: row.actor,
    reason: row.reason,
    jobId: row.job_id,
    tenant: row.tenant,
    botId: row.bot_id,
    sessionId: row.session_id,
    transport: row.transport,
    cleared: parseList(row.cleared),
    notCleared: parseList(row.not_cleared),
    outcome: row.outcome,
    verified: row.verified === 1,
    errorCode: row.error_code,
    attempts: row.attempts,
    latencyMs: row.latency_ms,
    requestId: row.request_id,
    directiveHash: row.directive_hash,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export interface AuditFilter {
  sessionId?: string | undefined;
  jobId?: string | undefined;
  /** ISO date-times, inclusive / exclusive. */
  since?: string | undefined;
  until?: string | undefined;
  outcome?: string | undefined;
}

/** Streams records in chain order (one row in memory at a time). */
export function* auditRecords(db: StateDb, filter: AuditFilter = {}): Generator<AuditRecord> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: string | undefined): void => {
    if (value === undefined) return;
    where.push(clause);
    params.push(value);
  };
  add('session_id = ?', filter.sessionId);
  add('job_id = ?', filter.jobId);
  add('ts >= ?', filter.since);
  add('ts < ?', filter.until);
  add('outcome = ?', filter.outcome);
  const sql = `SELECT * FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`;
  for (const row of db.prepare(sql).iterate(...params)) yield toRecord(row as Row);
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  headSeq: number;
  headHash: string;
  problem: ChainProblem | null;
}

/**
 * Walks the whole chain from genesis. Any edited field, removed or reordered row breaks a link; a
 * truncated tail no longer reaches the head anchor that each batch updates in the same transaction.
 */
export function verifyAudit(db: StateDb): VerifyResult {
  const head = db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as
    { seq: number; hash: string } | undefined;
  const checker = new ChainChecker({ prevHash: GENESIS_HASH, seq: 1 });
  const result = (problem: ChainProblem | null): VerifyResult => ({
    ok: problem === null,
    records: checker.count,
    headSeq: head?.seq ?? 0,
    headHash: head?.hash ?? GENESIS_HASH,
    problem,
  });
  for (const record of auditRecords(db)) {
    const problem = checker.check(record);
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
  return result(null);
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

function csvCell(value: AuditRecord[keyof AuditRecord]): string {
  if (value === null) return '';
  const text = Array.isArray(value) ? value.join(' ') : String(value);
  // Quote when needed; neutralise spreadsheet formulas (a cell starting with = + - @).
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

export function csvLine(record: AuditRecord): string {
  return CSV_COLUMNS.map((column) => csvCell(record[column])).join(',');
}

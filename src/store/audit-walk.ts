/**
 * Reading the audit chain as every backend does, over the rows it stores (seq, canonical text, hash):
 * the export's filter, and the walk from genesis that `verifyAudit` reports. Pure: the backend reads the
 * rows, in one snapshot, and feeds them in chain order.
 */
import {
  type AuditRecord,
  ChainChecker,
  type ChainProblem,
  GENESIS_HASH,
  parseCanonical,
} from '../audit/chain.js';
import { CognigyResetError } from '../errors.js';
import type { AuditFilter, VerifyResult } from './port.js';

/** A stored record that is not a canonical record at all: `audit verify` names it. */
export interface UnreadableRecord {
  seq: number;
  unreadable: true;
}

export type StoredRecord = AuditRecord | UnreadableRecord;

/** A stored row back as a record, or as unreadable. */
export function storedRecord(seq: number, record: string, hash: string): StoredRecord {
  return parseCanonical(seq, record, hash) ?? { seq, unreadable: true };
}

export function matchesFilter(r: AuditRecord, f: AuditFilter): boolean {
  return (
    (f.sessionId === undefined || r.sessionId === f.sessionId) &&
    (f.jobId === undefined || r.jobId === f.jobId) &&
    (f.since === undefined || r.ts >= f.since) &&
    (f.until === undefined || r.ts < f.until) &&
    (f.outcome === undefined || r.outcome === f.outcome)
  );
}

/**
 * The record when it matches `filter`, undefined when it does not. An unreadable record stops an export
 * (`CR_ERR_STATE_CORRUPT`): what it held cannot be shown, and hiding it would hide the tampering.
 */
export function exported(stored: StoredRecord, filter: AuditFilter): AuditRecord | undefined {
  if ('unreadable' in stored) {
    throw new CognigyResetError(
      'CR_ERR_STATE_CORRUPT',
      `audit record ${stored.seq} is not a readable record: run \`cognigy-reset audit verify\``,
    );
  }
  return matchesFilter(stored, filter) ? stored : undefined;
}

/**
 * Walks the whole chain from genesis: feed every stored record in seq order (`feed` returns the first
 * problem; stop there), then `end` compares the last record with the head anchor. Any edited field,
 * removed or reordered row breaks a link; a truncated tail no longer reaches the head that each batch
 * updates in the same transaction.
 */
export class ChainWalk {
  readonly #checker: ChainChecker;

  constructor(anchor: string | undefined) {
    this.#checker = new ChainChecker({ prevHash: GENESIS_HASH, seq: 1 }, false, anchor);
  }

  feed(stored: StoredRecord): ChainProblem | undefined {
    return 'unreadable' in stored
      ? { seq: stored.seq, sessionId: null, problem: 'the record is not readable: it was altered' }
      : this.#checker.check(stored);
  }

  /** The verdict: `problem` from `feed`, or (null) the head compared with the last record. */
  result(head: { seq: number; hash: string } | undefined, problem: ChainProblem | undefined): VerifyResult {
    const checker = this.#checker;
    const verdict = (p: ChainProblem | null): VerifyResult => ({
      ok: p === null,
      records: checker.count,
      headSeq: head?.seq ?? 0,
      headHash: head?.hash ?? GENESIS_HASH,
      anchorSeq: checker.anchorSeq,
      problem: p,
    });
    if (problem !== undefined) return verdict(problem);
    const lastSeq = checker.lastSeq ?? 0;
    if (head === undefined ? lastSeq !== 0 : head.seq !== lastSeq || head.hash !== checker.lastHash) {
      return verdict({
        seq: lastSeq + 1,
        sessionId: null,
        problem:
          head !== undefined && head.seq > lastSeq
            ? `the log ends at record ${lastSeq} but its head says ${head.seq}: records were truncated`
            : 'the head anchor does not match the last record',
      });
    }
    return verdict(checker.anchorProblem(false) ?? null);
  }
}

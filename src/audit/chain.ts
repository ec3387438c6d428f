/**
 * The audit chain, pure: each record's hash is SHA-256 over a canonical encoding of its fields and the
 * previous record's hash, so any edit, deletion, reordering or truncation breaks a link. The canonical
 * encoding is a JSON array in a fixed field order (no key-order or whitespace ambiguity); version 1.
 */
import { sha256 } from '../util/sha256.js';

export { sha256 };

export const GENESIS_HASH = '0'.repeat(64);
export const CHAIN_VERSION = 1;

/** One audit record as stored and exported. */
export interface AuditRecord {
  seq: number;
  ts: string;
  /** The OS user or the service principal (`COGNIGY_RESET_ACTOR`), never a token. */
  actor: string;
  reason: string | null;
  jobId: string | null;
  tenant: string;
  botId: string;
  sessionId: string;
  transport: string;
  /** Layers the reset cleared, and layers asked for that the transport could not clear. */
  cleared: string[];
  notCleared: string[];
  outcome: string;
  verified: boolean;
  errorCode: string | null;
  attempts: number;
  latencyMs: number;
  requestId: string | null;
  /** SHA-256 of the directive frame as sent; null when nothing was sent. */
  directiveHash: string | null;
  prevHash: string;
  hash: string;
}

export type AuditFields = Omit<AuditRecord, 'hash'>;

export function canonical(r: AuditFields): string {
  return JSON.stringify([
    CHAIN_VERSION,
    r.seq,
    r.ts,
    r.actor,
    r.reason,
    r.jobId,
    r.tenant,
    r.botId,
    r.sessionId,
    r.transport,
    r.cleared,
    r.notCleared,
    r.outcome,
    r.verified,
    r.errorCode,
    r.attempts,
    r.latencyMs,
    r.requestId,
    r.directiveHash,
    r.prevHash,
  ]);
}

const isText = (v: unknown): v is string => typeof v === 'string';
const isTextOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isText);

/**
 * A stored record (its canonical text, kept under `seq` with its `hash`) back as fields. `seq` is the
 * row's: a text moved to another row no longer hashes to its own hash. Undefined when the text is not a
 * version-1 canonical record.
 */
export function parseCanonical(seq: number, text: string, hash: string): AuditRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || v.length !== 20 || v[0] !== CHAIN_VERSION) return undefined;
  const f = v as unknown[];
  const [, , ts, actor, reason, jobId, tenant, botId, sessionId, transport, cleared, notCleared] = f;
  const [outcome, verified, errorCode, attempts, latencyMs, requestId, directiveHash, prevHash] = f.slice(12);
  if (
    !isText(ts) ||
    !isText(actor) ||
    !isTextOrNull(reason) ||
    !isTextOrNull(jobId) ||
    !isText(tenant) ||
    !isText(botId) ||
    !isText(sessionId) ||
    !isText(transport) ||
    !isList(cleared) ||
    !isList(notCleared) ||
    !isText(outcome) ||
    typeof verified !== 'boolean' ||
    !isTextOrNull(errorCode) ||
    typeof attempts !== 'number' ||
    typeof latencyMs !== 'number' ||
    !isTextOrNull(requestId) ||
    !isTextOrNull(directiveHash) ||
    !isText(prevHash)
  )
    return undefined;
  return {
    seq,
    ts,
    actor,
    reason,
    jobId,
    tenant,
    botId,
    sessionId,
    transport,
    cleared,
    notCleared,
    outcome,
    verified,
    errorCode,
    attempts,
    latencyMs,
    requestId,
    directiveHash,
    prevHash,
    hash,
  };
}

/** The fields of an exported record: exactly these, each covered by the hash (`hash` is the hash). */
const RECORD_FIELDS: Record<keyof AuditRecord, (v: unknown) => boolean> = {
  seq: Number.isSafeInteger,
  ts: isText,
  actor: isText,
  reason: isTextOrNull,
  jobId: isTextOrNull,
  tenant: isText,
  botId: isText,
  sessionId: isText,
  transport: isText,
  cleared: isList,
  notCleared: isList,
  outcome: isText,
  verified: (v) => typeof v === 'boolean',
  errorCode: isTextOrNull,
  attempts: (v) => typeof v === 'number',
  latencyMs: (v) => typeof v === 'number',
  requestId: isTextOrNull,
  directiveHash: isTextOrNull,
  prevHash: isText,
  hash: isText,
};

/**
 * The first key that appears twice in one object of `text`, a valid JSON text; undefined when none does.
 * `JSON.parse` keeps the last of two, while another reader may keep the first: a verified line must mean
 * one thing to every reader.
 */
export function duplicateKey(text: string): string | undefined {
  // One entry per open object (its keys so far) or array (null).
  const open: (Set<string> | null)[] = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (keyNext) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const keys = open.at(-1)!;
        if (keys.has(key)) return key;
        keys.add(key);
        keyNext = false;
      }
      i = end;
    } else if (c === '{') {
      open.push(new Set());
      keyNext = true;
    } else if (c === '[') {
      open.push(null);
    } else if (c === '}' || c === ']') {
      open.pop();
      keyNext = false;
    } else if (c === ',') {
      keyNext = open.at(-1) instanceof Set;
    }
  }
  return undefined;
}

/**
 * Why `value` (a parsed line of an export) is not an audit record, or undefined when it is one: a JSON
 * object with exactly the record's fields, each of its type. A field the hash does not cover is refused,
 * so nothing can ride along in a verified export.
 */
export function recordShapeProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const fields = value as Record<string, unknown>;
  const extra = Object.keys(fields).filter((key) => !Object.hasOwn(RECORD_FIELDS, key));
  if (extra.length > 0) {
    const shown = extra.slice(0, 3).map((key) => JSON.stringify(key.slice(0, 40)));
    return `field ${shown.join(', ')} is not part of an audit record (not covered by its hash)`;
  }
  for (const [key, valid] of Object.entries(RECORD_FIELDS)) {
    if (!Object.hasOwn(fields, key)) return `field ${key} is missing`;
    if (!valid(fields[key])) return `field ${key} has the wrong type`;
  }
  return undefined;
}

export function recordHash(r: AuditFields): string {
  return sha256(canonical(r));
}

export interface ChainProblem {
  seq: number;
  sessionId: string | null;
  problem: string;
}

/**
 * Checks records in order. `expectPrev` is the hash the first record must link to (genesis for a whole
 * log); `expectSeq` its sequence number, when known. Returns the first problem, or undefined.
 */
export class ChainChecker {
  #prevHash: string | undefined;
  #prevSeq: number | undefined;
  count = 0;

  /** With `allowGaps` (a filtered export), a jump in `seq` starts a new run: links are checked within runs. */
  readonly #allowGaps: boolean;
  /** Jumps in `seq` let through by `allowGaps` (a first record after seq 1 counts as one). */
  gaps = 0;
  /** A hash kept from an earlier verify, which a verified record must carry (`anchorProblem`). */
  readonly #anchor: string | undefined;
  /** The seq of the verified record that carries the anchor. */
  anchorSeq: number | undefined;

  constructor(start?: { prevHash: string; seq: number }, allowGaps = false, anchor?: string) {
    this.#allowGaps = allowGaps;
    this.#anchor = anchor;
    if (start !== undefined) {
      this.#prevHash = start.prevHash;
      this.#prevSeq = start.seq - 1;
    }
  }

  get lastHash(): string | undefined {
    return this.#prevHash;
  }

  get lastSeq(): number | undefined {
    return this.#prevSeq;
  }

  check(r: AuditRecord): ChainProblem | undefined {
    const at = { seq: r.seq, sessionId: r.sessionId };
    if (this.#allowGaps && (this.#prevSeq ?? 0) + 1 < r.seq) {
      this.gaps++;
      this.#prevSeq = undefined;
      this.#prevHash = undefined;
    }
    if (r.seq === 1 && r.prevHash !== GENESIS_HASH) {
      return { ...at, problem: 'the first record does not link to the genesis hash' };
    }
    if (this.#prevSeq !== undefined && r.seq !== this.#prevSeq + 1) {
      return {
        ...at,
        problem: `sequence jumps from ${this.#prevSeq} to ${r.seq}: a record is missing or out of order`,
      };
    }
    if (this.#prevHash !== undefined && r.prevHash !== this.#prevHash) {
      return {
        ...at,
        problem: 'prevHash does not match the previous record: a record was removed, reordered or altered',
      };
    }
    if (recordHash(r) !== r.hash) {
      return { ...at, problem: 'hash does not match the record: a field was altered' };
    }
    this.#prevHash = r.hash;
    this.#prevSeq = r.seq;
    this.count++;
    if (r.hash === this.#anchor) this.anchorSeq = r.seq;
    return undefined;
  }

  /**
   * Once every record is checked: the problem when an anchor was given and no verified record carries it.
   * `exported`: the records are a (perhaps filtered) export.
   */
  anchorProblem(exported: boolean): ChainProblem | undefined {
    if (this.#anchor === undefined || this.anchorSeq !== undefined) return undefined;
    const filtered = exported ? ", or the export's filters left that record out" : '';
    return {
      seq: (this.#prevSeq ?? 0) + 1,
      sessionId: null,
      problem: `no record has the anchor hash ${this.#anchor}: the log was rewritten or cut short before it, or the anchor comes from another log${filtered}`,
    };
  }
}

/**
 * The state file's schema, step by step: `MIGRATIONS[v]` takes a file of version v − 1 to version v. Each
 * step runs in the one transaction that upgrades a file (`openStateFile`).
 */
import type Database from 'better-sqlite3';
import { type AuditRecord, canonical } from '../../audit/chain.js';
import { sha256 } from '../../util/sha256.js';

/** Each step runs in one transaction: SQL text, or a function for a step that must re-encode rows. */
export const MIGRATIONS: Record<number, string | ((db: Database.Database) => void)> = {
  1: `
    CREATE TABLE jobs (
      job_id TEXT PRIMARY KEY,
      settings TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      runs INTEGER NOT NULL DEFAULT 0,
      reserved_upto INTEGER NOT NULL DEFAULT 0,
      finished INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE job_sessions (
      job_id TEXT NOT NULL,
      session_id TEXT NOT NULL,
      input_index INTEGER NOT NULL,
      outcome TEXT NOT NULL,
      verified INTEGER NOT NULL,
      done INTEGER NOT NULL,
      error_code TEXT,
      attempts INTEGER NOT NULL,
      latency_ms REAL NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (job_id, session_id)
    ) STRICT, WITHOUT ROWID;
  `,
  2: `
    CREATE TABLE audit_log (
      seq INTEGER PRIMARY KEY,
      ts TEXT NOT NULL,
      actor TEXT NOT NULL,
      reason TEXT,
      job_id TEXT,
      tenant TEXT NOT NULL,
      bot_id TEXT NOT NULL,
      session_id TEXT NOT NULL,
      transport TEXT NOT NULL,
      cleared TEXT NOT NULL,
      not_cleared TEXT NOT NULL,
      outcome TEXT NOT NULL,
      verified INTEGER NOT NULL,
      error_code TEXT,
      attempts INTEGER NOT NULL,
      latency_ms REAL NOT NULL,
      request_id TEXT,
      directive_hash TEXT,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    ) STRICT;
    CREATE TABLE audit_head (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      seq INTEGER NOT NULL,
      hash TEXT NOT NULL
    ) STRICT;
    CREATE TABLE outbox (
      id INTEGER PRIMARY KEY,
      idempotency_key TEXT NOT NULL UNIQUE,
      url TEXT NOT NULL,
      payload TEXT NOT NULL,
      created_at TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      delivered_at TEXT
    ) STRICT;
    CREATE INDEX outbox_pending ON outbox (delivered_at, id);
  `,
  // Version 3 keeps each audit record as its canonical text (what its hash covers) beside the hash: a
  // third of the columns to bind and no re-encoding on write. Version-2 rows are re-encoded with the same
  // canonical encoding, their stored hashes kept, so a record altered before the upgrade still fails.
  3: (db) => {
    db.exec(`CREATE TABLE audit_records (
      seq INTEGER PRIMARY KEY,
      record TEXT NOT NULL,
      hash TEXT NOT NULL
    ) STRICT`);
    const insert = db.prepare('INSERT INTO audit_records (seq, record, hash) VALUES (?, ?, ?)');
    // In pages: a connection cannot write while it iterates a query.
    const page = db.prepare('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 1000');
    for (let after = -Infinity; ;) {
      const rows = page.all(after) as Version2Row[];
      if (rows.length === 0) break;
      for (const row of rows) {
        const record = fromVersion2Row(row);
        insert.run(record.seq, canonical(record), record.hash);
      }
      after = rows.at(-1)!.seq;
    }
    db.exec('DROP TABLE audit_log');
  },
  // Version 4: which process runs each job now, so a second run of the same job is refused.
  4: `
    CREATE TABLE job_runs (
      job_id TEXT PRIMARY KEY,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      process_start TEXT,
      started_at TEXT NOT NULL
    ) STRICT;
  `,
  // Version 5: the outbox keeps a fingerprint of the webhook URL, not the URL. Webhook URLs often carry
  // their secret (a key in the query or the path), and a state file is handed to whoever audits it.
  // Pending events still go out on the next run that gives the same URL; delivered ones are dropped, as
  // delivery now removes them (so the delivered_at and attempts columns go too). Ids never come back
  // (AUTOINCREMENT): a deliverer reads on from the last id it posted, and an id reused after a delete
  // would hide a new event behind it.
  5: (db) => {
    db.function('cr_sha256', { deterministic: true }, (text: unknown) => sha256(String(text)));
    // The dropped table's pages would otherwise keep the URLs until something reuses them.
    const secureDelete = db.pragma('secure_delete', { simple: true }) as number;
    db.pragma('secure_delete = ON');
    db.exec(`
      CREATE TABLE outbox_v5 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL,
        url_sha256 TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;
      INSERT INTO outbox_v5 (id, idempotency_key, url_sha256, payload, created_at)
        SELECT id, idempotency_key, cr_sha256(url), payload, created_at FROM outbox
        WHERE delivered_at IS NULL;
      DROP TABLE outbox;
      ALTER TABLE outbox_v5 RENAME TO outbox;
      CREATE INDEX outbox_pending ON outbox (url_sha256, id);
    `);
    db.pragma(`secure_delete = ${secureDelete}`);
  },
  // Version 6: a job claim is a lease (its owner, and an expiry a heartbeat extends; a claim from before
  // has none, and counts as long as its process can be told to run); outbox events are claimed by one
  // deliverer at a time; and the service's API keys, kept by their hash. Each change is made only where
  // it is missing, so a file that has some of them already upgrades too.
  6: (db) => {
    const has = (table: string, column: string): boolean =>
      (db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[]).some(
        (c) => c.name === column,
      );
    for (const [table, column] of [
      ['job_runs', 'owner'],
      ['job_runs', 'expires_at'],
      ['outbox', 'claimed_by'],
      ['outbox', 'claimed_until'],
    ] as const) {
      if (!has(table, column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} TEXT`);
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL,
        scopes TEXT NOT NULL,
        tenants TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
      ) STRICT;
    `);
  },
  // Version 7: the service's jobs and their Idempotency-Keys, which lived in files beside the store. `seq`
  // orders them as they were created (two in the same millisecond too); one Idempotency-Key per API key.
  7: `
    CREATE TABLE IF NOT EXISTS service_jobs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      tenant TEXT NOT NULL,
      state TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      request TEXT NOT NULL,
      progress TEXT NOT NULL,
      idempotency_key_id TEXT,
      idempotency_key TEXT,
      request_hash TEXT,
      UNIQUE (idempotency_key_id, idempotency_key)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS service_jobs_tenant ON service_jobs (tenant, seq);
    CREATE INDEX IF NOT EXISTS service_jobs_state ON service_jobs (state, seq);
  `,
  // Version 8: a service job's sessions in chunks, which service replicas claim with leases
  // (`job-chunks.ts`). A rowid table: a chunk's targets and outcomes are long texts.
  8: `
    CREATE TABLE IF NOT EXISTS job_chunks (
      job_id TEXT NOT NULL,
      chunk_no INTEGER NOT NULL,
      first_index INTEGER NOT NULL,
      count INTEGER NOT NULL,
      targets TEXT NOT NULL,
      outcomes TEXT NOT NULL DEFAULT '',
      done INTEGER NOT NULL DEFAULT 0,
      error TEXT,
      owner TEXT,
      claimed_until TEXT,
      claims INTEGER NOT NULL DEFAULT 0,
      previous_owner TEXT,
      PRIMARY KEY (job_id, chunk_no)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS job_chunks_owner ON job_chunks (owner) WHERE owner IS NOT NULL;
  `,
  // A chunk's outcome lines, a row per heartbeat: appended, never written again (the column kept them as one
  // text that each heartbeat wrote anew with the new lines added).
  9: `
    CREATE TABLE IF NOT EXISTS job_chunk_outcomes (
      seq INTEGER PRIMARY KEY,
      job_id TEXT NOT NULL,
      chunk_no INTEGER NOT NULL,
      outcomes TEXT NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS job_chunk_outcomes_chunk ON job_chunk_outcomes (job_id, chunk_no, seq);
    INSERT INTO job_chunk_outcomes (job_id, chunk_no, outcomes)
      SELECT job_id, chunk_no, outcomes FROM job_chunks WHERE outcomes != '' ORDER BY job_id, chunk_no;
    UPDATE job_chunks SET outcomes = '' WHERE outcomes != '';
  `,
};

/** An audit row as schema version 2 kept it: one column per field. */
interface Version2Row {
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

function layerList(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.map(String) : [text];
  } catch {
    return [text];
  }
}

function fromVersion2Row(row: Version2Row): AuditRecord {
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
    cleared: layerList(row.cleared),
    notCleared: layerList(row.not_cleared),
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

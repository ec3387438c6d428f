/**
 * The PostgreSQL store's schema, as versioned migrations kept here in order. Opening a store to write
 * brings it to the latest version: under an advisory lock, in one transaction, so processes opening a new
 * database together migrate it once (the others wait, then find the work done). Table `schema_version`
 * has a row per applied step. A database of a newer version is refused and left untouched.
 */
import type { ClientBase } from 'pg';
import { GENESIS_HASH } from '../../audit/chain.js';
import { CognigyResetError } from '../../errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs and leases, the audit chain, the outbox, API keys',
    sql: `
      CREATE TABLE jobs (
        job_id text PRIMARY KEY,
        settings text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        runs integer NOT NULL DEFAULT 0,
        reserved_upto bigint NOT NULL DEFAULT 0,
        finished boolean NOT NULL DEFAULT false
      );
      CREATE TABLE job_sessions (
        job_id text NOT NULL,
        session_id text NOT NULL,
        input_index bigint NOT NULL,
        outcome text NOT NULL,
        verified boolean NOT NULL,
        done boolean NOT NULL,
        error_code text,
        attempts integer NOT NULL,
        latency_ms double precision NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (job_id, session_id)
      );
      CREATE TABLE job_runs (
        job_id text PRIMARY KEY,
        owner text NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        process_start text,
        started_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE TABLE audit_records (
        seq bigint PRIMARY KEY,
        record text NOT NULL,
        hash text NOT NULL
      );
      CREATE TABLE audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL
      );
      INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');
      CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        idempotency_key text NOT NULL,
        url_sha256 text NOT NULL,
        payload text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        claimed_by text,
        claimed_until timestamptz
      );
      CREATE INDEX outbox_pending ON outbox (url_sha256, id);
      CREATE TABLE api_keys (
        id text PRIMARY KEY,
        hash text NOT NULL UNIQUE,
        label text NOT NULL,
        scopes text[] NOT NULL,
        tenants text[] NOT NULL,
        created_at timestamptz NOT NULL,
        revoked_at timestamptz,
        last_used_at timestamptz
      );
    `,
  },
  {
    version: 2,
    name: "the service's jobs, with their Idempotency-Keys",
    sql: `
      CREATE TABLE service_jobs (
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id text PRIMARY KEY,
        tenant text NOT NULL,
        state text NOT NULL,
        created_at text NOT NULL,
        updated_at text NOT NULL,
        request text NOT NULL,
        progress text NOT NULL,
        idempotency_key_id text,
        idempotency_key text,
        request_hash text,
        UNIQUE (idempotency_key_id, idempotency_key)
      );
      CREATE INDEX service_jobs_state ON service_jobs (state, seq);
    `,
  },
  {
    version: 3,
    name: "the service jobs' chunks, claimed by replicas with leases",
    sql: `
      CREATE TABLE job_chunks (
        job_id text NOT NULL,
        chunk_no integer NOT NULL,
        first_index bigint NOT NULL,
        count integer NOT NULL,
        targets text NOT NULL,
        outcomes text NOT NULL DEFAULT '',
        done boolean NOT NULL DEFAULT false,
        error text,
        owner text,
        claimed_until timestamptz,
        claims integer NOT NULL DEFAULT 0,
        previous_owner text,
        PRIMARY KEY (job_id, chunk_no)
      );
      CREATE INDEX job_chunks_owner ON job_chunks (owner) WHERE owner IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: "a chunk's outcome lines, a row per heartbeat",
    sql: `
      CREATE TABLE job_chunk_outcomes (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id text NOT NULL,
        chunk_no integer NOT NULL,
        outcomes text NOT NULL
      );
      CREATE INDEX job_chunk_outcomes_chunk ON job_chunk_outcomes (job_id, chunk_no, seq);
      INSERT INTO job_chunk_outcomes (job_id, chunk_no, outcomes)
        SELECT job_id, chunk_no, outcomes FROM job_chunks WHERE outcomes <> '' ORDER BY job_id, chunk_no;
      UPDATE job_chunks SET outcomes = '' WHERE outcomes <> '';
    `,
  },
];

export const PG_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** The advisory lock key of migrations: "CRST", the SQLite state file's application id. */
const MIGRATION_LOCK = 0x43525354;

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS schema_version (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`;

/** The store's schema version: 0 for a database that holds no store yet. */
export async function schemaVersion(client: ClientBase): Promise<number> {
  const table = await client.query<{ found: boolean }>(
    "SELECT to_regclass('schema_version') IS NOT NULL AS found",
  );
  if (table.rows[0]?.found !== true) return 0;
  const version = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
  return version.rows[0]?.v ?? 0;
}

function refuseNewer(version: number, shown: string): void {
  if (version > PG_SCHEMA_VERSION) {
    throw new CognigyResetError(
      'CR_ERR_STATE_NEWER',
      `the PostgreSQL store ${shown} has schema version ${version}; this cognigy-reset understands up to ${PG_SCHEMA_VERSION}: upgrade cognigy-reset`,
    );
  }
}

/** Brings the store to the latest version (creating it in an empty database); refuses a newer one. */
export async function migrate(client: ClientBase, shown: string): Promise<void> {
  const seen = await schemaVersion(client);
  refuseNewer(seen, shown);
  if (seen === PG_SCHEMA_VERSION) return;
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('BEGIN');
    try {
      await client.query(VERSION_TABLE);
      // Read again under the lock: another process may have migrated meanwhile.
      const current = await schemaVersion(client);
      refuseNewer(current, shown);
      for (const step of MIGRATIONS) {
        if (step.version <= current) continue;
        await client.query(step.sql);
        await client.query('INSERT INTO schema_version (version, name) VALUES ($1, $2)', [
          step.version,
          step.name,
        ]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
  }
}

/** A read-only open migrates nothing: the store must be there, at this version. */
export async function checkSchema(client: ClientBase, shown: string): Promise<void> {
  const version = await schemaVersion(client);
  refuseNewer(version, shown);
  if (version === 0) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `the PostgreSQL database ${shown} holds no cognigy-reset store yet (no schema_version table): nothing to read`,
    );
  }
  if (version < PG_SCHEMA_VERSION) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `the PostgreSQL store ${shown} has schema version ${version}: open it once with a command that writes (reset, keys) to upgrade it to ${PG_SCHEMA_VERSION}`,
    );
  }
}

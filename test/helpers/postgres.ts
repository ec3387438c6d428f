/**
 * A PostgreSQL database of its own for a test file: created with a random name on the local server
 * (through its `test` database, or `CR_TEST_PG_URL`) and dropped in `after()`. Each `freshStore()` is a
 * schema of its own inside it, so a suite can open as many empty stores as it likes.
 *
 * No server: with `CI=true` the file fails (CI must test both backends); elsewhere its tests are skipped
 * with a line that says why.
 */
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, it } from 'node:test';
import pg from 'pg';

/** The server's maintenance database, where test databases are created from. */
export const PG_SERVER_URL = process.env['CR_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  /** The database's own URL. */
  url: string;
  /** A URL whose store lives in a new, empty schema of this database. */
  freshSchema(): Promise<string>;
  /** Runs SQL in the database (in `schemaUrl`'s schema when given). */
  sql<R extends pg.QueryResultRow = Record<string, any>>(
    text: string,
    values?: unknown[],
    schemaUrl?: string,
  ): Promise<R[]>;
}

/** The URL `url` with its database replaced. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const schemaOf = (url: string): string | undefined =>
  /search_path=([a-z0-9_]+)/.exec(new URL(url).searchParams.get('options') ?? '')?.[1];

let schemas = 0;

/**
 * Creates this file's database, dropped in `after()`; undefined when no server answers (a failing test
 * is registered under CI=true, a skipped one elsewhere).
 */
export async function testDatabase(prefix: string): Promise<TestDatabase | undefined> {
  const admin = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
  } catch (err) {
    const reason = `no PostgreSQL server answers at ${new URL(PG_SERVER_URL).host} (${(err as { code?: string }).code ?? (err as Error).message}): start one, or set CR_TEST_PG_URL`;
    if (process.env['CI'] === 'true') {
      it('reaches the PostgreSQL server (CI=true: both backends are tested)', () => assert.fail(reason));
    } else {
      it('PostgreSQL store tests', { skip: reason }, () => undefined);
    }
    return undefined;
  }
  const name = `cr_test_${prefix}_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = withDatabase(PG_SERVER_URL, name);
  const clients = new Map<string, pg.Client>();
  const clientFor = async (schema: string | undefined): Promise<pg.Client> => {
    const key = schema ?? '';
    let client = clients.get(key);
    if (client === undefined) {
      client = new pg.Client({
        connectionString: url,
        ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
      });
      client.on('error', () => undefined);
      await client.connect();
      clients.set(key, client);
    }
    return client;
  };
  after(async () => {
    for (const client of clients.values()) await client.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });
  return {
    url,
    async freshSchema() {
      const schema = `s${++schemas}`;
      await (await clientFor(undefined)).query(`CREATE SCHEMA ${schema}`);
      const u = new URL(url);
      u.searchParams.set('options', `-c search_path=${schema}`);
      return u.toString();
    },
    async sql(text, values, schemaUrl) {
      const client = await clientFor(schemaUrl === undefined ? undefined : schemaOf(schemaUrl));
      return (await client.query(text, values)).rows;
    },
  };
}

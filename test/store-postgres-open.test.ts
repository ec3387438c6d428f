/**
 * Opening a PostgreSQL store: migrations run once however many processes open a new database together,
 * a newer schema is refused untouched, a read-only open writes nothing, a failure is a coded error, and
 * the password in the URL is never shown.
 */
import * as assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { isCognigyResetError } from '../src/errors.js';
import { blankOutcome } from '../src/reset/outcome.js';
import { openStore } from '../src/store/index.js';
import { testDatabase } from './helpers/postgres.js';
import { serviceJobRecord } from './helpers/service-job.js';

const db = await testDatabase('open');

const codeOf = (code: string) => (err: unknown) => isCognigyResetError(err) && err.code === code;

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const PASSWORD = 'pw-RECOGNISABLE-5e4d3c';

if (db !== undefined) {
  describe('opening a PostgreSQL store', () => {
    it('migrates a new database once when several processes open it together', async () => {
      const url = await db.freshSchema();
      const stores = await Promise.all(Array.from({ length: 4 }, () => openStore(url)));
      await Promise.all(stores.map((s) => s.close()));
      const versions = await db.sql<{ version: number }>(
        'SELECT version FROM schema_version ORDER BY version',
        [],
        url,
      );
      assert.deepEqual(
        versions.map((v) => v.version),
        [1, 2, 3, 4],
      );
      // Opened again: nothing to do, nothing changes.
      await (await openStore(url)).close();
      assert.equal((await db.sql('SELECT version FROM schema_version', [], url)).length, 4);
    });

    it('upgrades a store of version 2: its service jobs are kept, and their chunks can be claimed', async () => {
      const url = await db.freshSchema();
      const before = await openStore(url);
      await before.createServiceJob(serviceJobRecord('job_1', 'queued'));
      await before.close();
      // Back to what version 2 made: no chunks.
      await db.sql(
        'DROP TABLE job_chunks, job_chunk_outcomes; DELETE FROM schema_version WHERE version >= 3',
        [],
        url,
      );
      const store = await openStore(url);
      try {
        assert.equal((await store.getServiceJob('job_1'))?.state, 'queued');
        await store.addJobChunks('job_1', [{ chunkNo: 0, firstIndex: 0, count: 1, targets: 'x\n' }]);
        assert.equal((await store.claimJobChunk({ owner: 'r1', leaseMs: 60_000 }))?.jobId, 'job_1');
      } finally {
        await store.close();
      }
      const versions = await db.sql<{ version: number }>(
        'SELECT version FROM schema_version ORDER BY version',
        [],
        url,
      );
      assert.deepEqual(
        versions.map((v) => v.version),
        [1, 2, 3, 4],
      );
    });

    it("upgrades a store of version 3: a chunk's outcome lines, kept in the chunk's row, become its first", async () => {
      const url = await db.freshSchema();
      const before = await openStore(url);
      await before.createServiceJob(serviceJobRecord('job_1', 'running'));
      await before.addJobChunks('job_1', [{ chunkNo: 0, firstIndex: 0, count: 3, targets: 'x\n' }]);
      await before.close();
      // Back to what version 3 made: the lines in the chunk's row.
      await db.sql(
        `DROP TABLE job_chunk_outcomes; DELETE FROM schema_version WHERE version = 4;
         UPDATE job_chunks SET outcomes = 'a' || chr(10) || 'b' || chr(10)`,
        [],
        url,
      );
      const store = await openStore(url);
      try {
        const chunk = await store.claimJobChunk({ owner: 'r1', leaseMs: 60_000 });
        assert.equal(chunk?.outcomes, 'a\nb\n');
        assert.equal(
          await store.finishJobChunk('job_1', 0, { owner: 'r1', outcomes: 'c\n', error: null }),
          true,
        );
        const texts: string[] = [];
        for await (const text of store.jobChunkOutcomes('job_1')) texts.push(text);
        assert.deepEqual(texts, ['a\nb\nc\n']);
      } finally {
        await store.close();
      }
      const [left] = await db.sql<{ n: number }>(
        "SELECT count(*)::int AS n FROM job_chunks WHERE outcomes <> ''",
        [],
        url,
      );
      assert.equal(left!.n, 0);
    });

    it('refuses a store of a newer schema version, writing or reading, and leaves it untouched', async () => {
      const url = await db.freshSchema();
      await (await openStore(url)).close();
      await db.sql("INSERT INTO schema_version (version, name) VALUES (99, 'from the future')", [], url);
      await assert.rejects(openStore(url), codeOf('CR_ERR_STATE_NEWER'));
      await assert.rejects(openStore(url, { readOnly: true }), (err: unknown) => {
        assert.ok(isCognigyResetError(err));
        assert.equal(err.code, 'CR_ERR_STATE_NEWER');
        assert.match(
          err.message,
          /schema version 99; this cognigy-reset understands up to 4: upgrade cognigy-reset/,
        );
        return true;
      });
      assert.equal((await db.sql('SELECT version FROM schema_version', [], url)).length, 5);
    });

    it('reads a store read-only: verifies and exports, refuses writes, and refuses a database holding no store', async () => {
      const url = await db.freshSchema();
      const writer = await openStore(url);
      const w = await writer.writer();
      await w.append({
        outcome: blankOutcome('s1', 'reset', ['flow'], []),
        audit: {
          actor: 'os:t',
          reason: null,
          jobId: null,
          tenant: 't',
          botId: 'b',
          transport: 'runtime-ws',
          notCleared: [],
        },
      });
      await w.close();
      await writer.close();
      const reader = await openStore(url, { readOnly: true });
      assert.equal((await reader.verifyAudit()).records, 1);
      await assert.rejects(
        reader.openJob({ jobId: 'j', settings: {}, leaseMs: 1 }),
        codeOf('CR_ERR_STATE_OPEN'),
      );
      await assert.rejects(reader.writer(), codeOf('CR_ERR_STATE_OPEN'));
      await reader.close();
      const empty = await db.freshSchema();
      await assert.rejects(openStore(empty, { readOnly: true }), (err: unknown) => {
        assert.ok(isCognigyResetError(err));
        assert.equal(err.code, 'CR_ERR_STATE_OPEN');
        assert.match(err.message, /holds no cognigy-reset store/);
        return true;
      });
      assert.equal((await db.sql("SELECT to_regclass('schema_version') AS t", [], empty))[0]!.t, null);
    });

    it("fails an append it cannot commit with CR_ERR_STATE_WRITE, in its own words, never the server's", async () => {
      const url = await db.freshSchema();
      const store = await openStore(url, { writerThread: false });
      await db.sql(
        `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full (injected)'; END $$;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION refuse();`,
        [],
        url,
      );
      const writer = await store.writer();
      await assert.rejects(
        writer.append({
          outcome: blankOutcome('a', 'reset', ['flow'], []),
          audit: {
            actor: 'os:t',
            reason: null,
            jobId: null,
            tenant: 't',
            botId: 'b',
            transport: 'runtime-ws',
            notCleared: [],
          },
        }),
        (err: unknown) => {
          assert.ok(isCognigyResetError(err));
          assert.equal(err.code, 'CR_ERR_STATE_WRITE');
          assert.match(err.message, /a trigger refused the write \(SQLSTATE P0001\)/);
          assert.doesNotMatch(err.message, /injected|INSERT/);
          return true;
        },
      );
      await writer.close();
      assert.equal((await store.verifyAudit()).records, 0);
      await store.close();
    });
  });

  describe('the password in a PostgreSQL URL', () => {
    it('is redacted from the store location and from every error, a refused connection included', async () => {
      const port = await closedPort();
      const refused = `postgres://cr_user:${PASSWORD}@127.0.0.1:${port}/somedb?sslmode=disable&password=${PASSWORD}`;
      await assert.rejects(openStore(refused), (err: unknown) => {
        assert.ok(isCognigyResetError(err));
        assert.equal(err.code, 'CR_ERR_STATE_OPEN');
        assert.equal(
          err.message,
          `connecting to the PostgreSQL store postgres://cr_user:[REDACTED]@127.0.0.1:${port}/somedb?sslmode=disable&password=[REDACTED] failed: the connection was refused (ECONNREFUSED)`,
        );
        assert.ok(!JSON.stringify({ message: err.message, stack: err.stack }).includes(PASSWORD));
        return true;
      });
      // The server takes any password (trust): the location, and a refusal on open, still hide it.
      const url = new URL(await db.freshSchema());
      url.username = 'postgres';
      url.password = PASSWORD;
      const store = await openStore(url.toString());
      assert.ok(!store.location.includes(PASSWORD));
      assert.match(store.location, /^postgres:\/\/postgres:\[REDACTED\]@127\.0\.0\.1:5432\/cr_test_open_/);
      await store.close();
      url.searchParams.set('options', '-c search_path=nowhere');
      await assert.rejects(openStore(url.toString(), { readOnly: true }), (err: unknown) => {
        assert.ok(isCognigyResetError(err));
        assert.ok(!err.message.includes(PASSWORD), err.message);
        return true;
      });
    });
  });
}

/**
 * The CLI on a PostgreSQL store, as real child processes: `reset --store postgres://...` then `audit
 * verify` and `audit export` on it (and `COGNIGY_RESET_STORE`), `keys create` then `keys list`, `serve`
 * running a job into it; a store that cannot be reached stops a run before anything is sent; the
 * password in the URL never shows.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { testDatabase } from './helpers/postgres.js';
import { withDeadline } from './helpers/ws.js';

const db = await testDatabase('cli');
const PASSWORD = 'pw-CLI-RECOGNISABLE-77a1';

/** The URL of a new, empty store, with a password the server (trust) accepts and ignores. */
async function storeUrl(): Promise<string> {
  const url = new URL(await db!.freshSchema());
  url.username = 'postgres';
  url.password = PASSWORD;
  return url.toString();
}

if (db !== undefined) {
  describe('the CLI on a PostgreSQL store', () => {
    let emu: Emulator;
    let cwd: string;
    before(async () => {
      emu = await startEmulator({ sessions: 200 });
      cwd = mkdtempSync(join(tmpdir(), 'cr-cli-postgres-'));
    });
    after(async () => {
      await emu.close();
      rmSync(cwd, { recursive: true, force: true });
    });
    const env = (extra: Record<string, string> = {}): Record<string, string> => ({
      COGNIGY_WS_URL: emu.wsUrl,
      COGNIGY_TENANT_ID: 'tenant-1',
      COGNIGY_BOT_ID: 'bot-1',
      COGNIGY_API_TOKEN: 'dev-token',
      ...extra,
    });
    const noPassword = (...texts: string[]): void => {
      for (const text of texts)
        assert.ok(!text.includes(PASSWORD), `the password shows in: ${text.slice(0, 300)}`);
    };

    it('resets with --store postgres://..., then audit verify and export read that store', async () => {
      const store = await storeUrl();
      const ids = Array.from({ length: 20 }, (_, i) => `session-${i + 1}`);
      const run = await runCli(
        ['reset', ...ids, '--store', store, '--job', 'pg-1', '--json', '--log-level', 'debug'],
        env(),
        { cwd },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(parseJsonLines(run.stdout).summary!.verified, 20);
      // A second run through the variable extends the same chain; the job's first run is remembered.
      const again = await runCli(
        ['reset', 'session-1', 'session-21', '--job', 'pg-1', '--json'],
        env({ COGNIGY_RESET_STORE: store }),
        { cwd },
      );
      assert.equal(again.code, 0, again.stderr);
      const { sessions } = parseJsonLines(again.stdout);
      assert.deepEqual(sessions.map((s) => [s.sessionId, s.outcome]).sort(), [
        ['session-1', 'skipped'],
        ['session-21', 'reset'],
      ]);
      const verify = await runCli(['audit', 'verify', '--store', store], {}, { cwd });
      assert.equal(verify.code, 0, verify.stderr);
      const verdict = JSON.parse(verify.stdout);
      assert.deepEqual([verdict.ok, verdict.records, verdict.headSeq], [true, 21, 21]);
      const exported = await runCli(
        ['audit', 'export', '--job', 'pg-1'],
        { COGNIGY_RESET_STORE: store },
        { cwd },
      );
      assert.equal(exported.code, 0, exported.stderr);
      const records = exported.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line));
      assert.equal(records.length, 21);
      assert.deepEqual(
        records.map((r) => r.seq),
        Array.from({ length: 21 }, (_, i) => i + 1),
      );
      noPassword(run.stdout, run.stderr, again.stdout, again.stderr, verify.stdout, exported.stdout);
    });

    it('creates a key with keys create, and keys list shows it (never the key)', async () => {
      const store = await storeUrl();
      const made = await runCli(
        ['keys', 'create', '--scope', 'jobs:read', '--label', 'ops', '--store', store],
        {},
        { cwd },
      );
      assert.equal(made.code, 0, made.stderr);
      const { id, key } = JSON.parse(made.stdout) as { id: string; key: string };
      const listed = await runCli(['keys', 'list'], { COGNIGY_RESET_STORE: store }, { cwd });
      assert.equal(listed.code, 0, listed.stderr);
      const keys = listed.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line));
      assert.deepEqual(
        keys.map((k) => [k.id, k.label, k.scopes]),
        [[id, 'ops', ['jobs:read']]],
      );
      assert.ok(!listed.stdout.includes(key));
      noPassword(made.stdout, made.stderr, listed.stdout, listed.stderr);
    });

    it('serves with --store postgres://...: a job run through the API is audited in that store', async (t) => {
      const store = await storeUrl();
      const server = startCli(
        ['serve', '--emulator', '--sessions', '50', '--port', '0', '--store', store],
        {},
        undefined,
        cwd,
      );
      t.after(() => server.child.kill('SIGKILL'));
      await waitForOutput(server, (out) => out.includes('\n'));
      const { url } = JSON.parse(server.stdout().split('\n')[0]!) as { url: string };
      const made = await runCli(
        ['keys', 'create', '--scope', 'jobs:read,jobs:write', '--store', store],
        {},
        { cwd },
      );
      const { key } = JSON.parse(made.stdout) as { key: string };
      const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
      const res = await fetch(`${url}/v1/jobs`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ tenant: 'demo', bot: 'demo-bot', sessions: ['session-1', 'session-2'] }),
      });
      assert.equal(res.status, 201);
      const { id } = (await res.json()) as { id: string };
      const events = await withDeadline(
        (await fetch(`${url}/v1/jobs/${id}/events`, { headers: auth })).text(),
        30_000,
        'the job to finish',
      );
      assert.equal(JSON.parse(events.trim().split('\n').pop()!.slice(6)).state, 'succeeded');
      const verify = await runCli(['audit', 'verify', '--store', store], {}, { cwd });
      assert.equal(JSON.parse(verify.stdout).records, 2);
      server.child.kill('SIGTERM');
      const exit = await withDeadline(server.done, 30_000, 'serve to stop');
      assert.equal(exit.code, 0, exit.stderr);
      noPassword(exit.stdout, exit.stderr);
    });

    it('stops a run before anything is sent when the store cannot be reached, naming it redacted', async () => {
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const { port } = probe.address() as { port: number };
      await new Promise((resolve) => probe.close(resolve));
      const store = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/nowhere`;
      const run = await runCli(['reset', 'session-150', '--store', store], env(), { cwd });
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(
          `CR_ERR_STATE_OPEN: connecting to the PostgreSQL store postgres://postgres:\\[REDACTED\\]@127\\.0\\.0\\.1:${port}/nowhere failed: the connection was refused`,
        ),
      );
      assert.equal(emu.store.get('session-150')!.flowState, 'ACTIVE', 'nothing was sent');
      noPassword(run.stdout, run.stderr);
      const mixed = await runCli(['keys', 'list', '--store', store, '--state', 'x.sqlite'], {}, { cwd });
      assert.equal(mixed.code, 2);
      assert.match(mixed.stderr, /give --store or --state, not both/);
    });
  });
}

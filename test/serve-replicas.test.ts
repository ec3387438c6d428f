/**
 * Two `serve` replicas (real child processes) on one store, SQLite file and PostgreSQL: they share one
 * job's chunks, answer the same for it, and a cancel on one stops the work on the other. The engine is an
 * emulator in this process, so that its latency can be raised while the cancel is tested.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { type CliRun, runCli, startCli, waitForOutput, waitForStderr } from './helpers/cli.js';
import { testDatabase } from './helpers/postgres.js';
import { readEvents } from './helpers/service.js';

const N = 6000;

type Status = Record<string, unknown> & {
  state: string;
  chunks: { total: number; done: number; leased: number; owners: string[] } | null;
};

async function replica(t: TestContext, store: string, config: string, token = 'dev-token'): Promise<string> {
  return (await replicaRun(t, store, config, token)).url;
}

async function replicaRun(
  t: TestContext,
  store: string,
  config: string,
  token: string,
): Promise<{ url: string; run: CliRun }> {
  const run = startCli(['serve', '--config', config, '--port', '0', '--store', store, '--lease', '6'], {
    DEMO_TOKEN: token,
  });
  t.after(() => run.child.kill('SIGKILL'));
  await waitForOutput(run, (out) => out.includes('\n'));
  return { url: (JSON.parse(run.stdout().split('\n')[0]!) as { url: string }).url, run };
}

/** Follows a job's events until `until` holds for a status (or the stream's `done`, when `until` is 'done'). */
async function follow(
  url: string,
  auth: Record<string, string>,
  id: string,
  until: ((status: Status) => boolean) | 'done',
  onStatus: (status: Status) => void = () => undefined,
  ms = 120_000,
): Promise<Status> {
  const res = await fetch(`${url}/v1/jobs/${id}/events`, { headers: auth });
  return readEvents<Status>(
    res,
    id,
    (event, status) => {
      onStatus(status);
      return until === 'done' ? event === 'done' : until(status);
    },
    ms,
  );
}

/** What every replica must answer the same: the figures of the store, not of the replica's own work. */
function shared(status: Status): Record<string, unknown> {
  const { id, state, counts, done, errors, error, chunks, startedAt, finishedAt, cancelRequested } = status;
  return { id, state, counts, done, errors, error, chunks, startedAt, finishedAt, cancelRequested };
}

async function scenario(t: TestContext, store: string, emulator: Emulator): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cr-serve-replicas-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.json');
  // One chunk at a time on each replica: a job of several chunks needs both.
  writeFileSync(
    config,
    JSON.stringify({
      maxRunningJobs: 1,
      tenants: {
        demo: { transport: 'runtime-ws', url: emulator.wsUrl, bot: 'demo-bot', tokenEnv: 'DEMO_TOKEN' },
      },
    }),
  );
  const [a, b] = [await replica(t, store, config), await replica(t, store, config)];
  const made = await runCli(['keys', 'create', '--scope', 'jobs:read,jobs:write', '--store', store], {});
  assert.equal(made.code, 0, made.stderr);
  const auth = { authorization: `Bearer ${(JSON.parse(made.stdout) as { key: string }).key}` };
  const create = async (url: string, sessions: number): Promise<string> => {
    const res = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant: 'demo',
        sessions: Array.from({ length: sessions }, (_, i) => `session-${i + 1}`),
      }),
    });
    assert.equal(res.status, 201);
    return ((await res.json()) as { id: string }).id;
  };

  // One job, made on A: both replicas run its chunks.
  emulator.setFaults({ latencyMs: 2 });
  const sendsBefore = emulator.stats().sends;
  const shared1 = await create(a, N);
  const owners = new Set<string>();
  const last = await follow(b, auth, shared1, 'done', (status) =>
    status.chunks?.owners.forEach((owner) => owners.add(owner)),
  );
  assert.equal(last.state, 'succeeded', JSON.stringify(last));
  assert.equal(owners.size, 2, `both replicas claimed chunks: ${[...owners].join(', ')}`);
  assert.deepEqual((last['counts'] as Record<string, number>)['reset'], N);
  assert.equal(emulator.stats().sends - sendsBefore, N, 'each session sent once');
  // Either replica answers the same, from the store.
  const views = await Promise.all(
    [a, b].map(
      async (url) => (await (await fetch(`${url}/v1/jobs/${shared1}`, { headers: auth })).json()) as Status,
    ),
  );
  assert.deepEqual(shared(views[0]!), shared(views[1]!));
  assert.deepEqual(views[0]!.chunks, { total: N / 1000, done: N / 1000, leased: 0, owners: [] });
  const outcomes = await Promise.all(
    [a, b].map(async (url) => (await fetch(`${url}/v1/jobs/${shared1}/outcomes`, { headers: auth })).text()),
  );
  assert.equal(outcomes[0], outcomes[1]);
  const ids = outcomes[0]!
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { sessionId: string }).sessionId);
  assert.equal(new Set(ids).size, N);

  // Another, held: the engine answers a chunk and a half of it, then holds every answer, so that the job
  // cannot end before both replicas run a chunk of it, however fast the machine. Then a cancel on A stops
  // B's too.
  emulator.setFaults({ latencyMs: 0, holdAfterSends: emulator.stats().sends + 1500 });
  const shared2 = await create(b, N);
  await follow(a, auth, shared2, (status) => (status.chunks?.owners.length ?? 0) === 2);
  const cancelled = await fetch(`${a}/v1/jobs/${shared2}/cancel`, { method: 'POST', headers: auth });
  assert.equal(cancelled.status, 202);
  // The engine lets the held answers go: the sessions in flight finish, and nothing new is sent.
  emulator.setFaults({ holdAfterSends: 0 });
  // B's stream ends once no chunk of the job runs anywhere (its in-flight sessions finished and written):
  // about a second on a quiet machine; the deadline only bounds a test that would otherwise hang.
  const cancelledAt = performance.now();
  const ended = await follow(b, auth, shared2, 'done', undefined, 20_000);
  t.diagnostic(`B's stream ended ${Math.round(performance.now() - cancelledAt)} ms after the cancel on A`);
  assert.equal(ended.state, 'cancelled');
  assert.equal(ended.chunks?.leased, 0);
  const sent = emulator.stats().sends - sendsBefore - N;
  const counts = ended['counts'] as Record<string, number>;
  assert.ok(counts['reset']! < N, 'the cancel stopped the job');
  assert.equal(counts['reset']! + counts['failed']!, sent, 'no session sent after the job ended');
}

describe('serve: two replicas on one store', () => {
  it("a replica whose token the engine refuses leaves the job's chunks to the other: the job succeeds", async (t) => {
    const emulator = await startEmulator({ sessions: 3000, tenant: 'demo', botId: 'demo-bot' });
    t.after(() => emulator.close());
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-replicas-token-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = join(dir, 'state.sqlite');
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        tenants: {
          demo: { transport: 'runtime-ws', url: emulator.wsUrl, bot: 'demo-bot', tokenEnv: 'DEMO_TOKEN' },
        },
      }),
    );
    // The stale replica makes the job: it claims first (at once, where the other looks twice a second),
    // and the engine refuses its token. The other runs already: a replica that gives chunks up keeps off
    // the tenant for seconds, which a replica still starting on a loaded machine could miss.
    const stale = await replicaRun(t, store, config, 'a-rotated-token');
    const good = await replicaRun(t, store, config, 'dev-token');
    const made = await runCli(['keys', 'create', '--scope', 'jobs:read,jobs:write', '--store', store], {});
    assert.equal(made.code, 0, made.stderr);
    const auth = { authorization: `Bearer ${(JSON.parse(made.stdout) as { key: string }).key}` };
    const res = await fetch(`${stale.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant: 'demo',
        sessions: Array.from({ length: 3000 }, (_, i) => `session-${i + 1}`),
      }),
    });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    await waitForStderr(
      stale.run,
      (err) => err.includes("the engine refused this replica's credentials"),
      30_000,
    );
    const last = await follow(good.url, auth, id, 'done', undefined, 60_000);
    assert.equal(last.state, 'succeeded', JSON.stringify(last));
    assert.deepEqual(last['counts'], { total: 3000, reset: 3000, verified: 3000, failed: 0, skipped: 0 });
    assert.equal(emulator.stats().sends, 3000, 'each session sent once, all by the replica with the token');
    // Alone, the stale replica gets its chunk back (nobody else took it): the job fails on the refusal.
    good.run.child.kill('SIGKILL');
    await good.run.done;
    const again = await fetch(`${stale.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'demo', sessions: ['session-1', 'session-2'] }),
    });
    assert.equal(again.status, 201);
    const failed = await follow(
      stale.url,
      auth,
      ((await again.json()) as { id: string }).id,
      'done',
      undefined,
      60_000,
    );
    assert.equal(failed.state, 'failed', JSON.stringify(failed));
    assert.equal(
      (failed['error'] as { code: string } | null)?.code,
      'CR_ERR_AUTH_UNAUTHORIZED',
      JSON.stringify(failed),
    );
    assert.equal(emulator.stats().sends, 3000, 'nothing sent with the refused token');
    assert.ok(!stale.run.stderr().includes('a-rotated-token'), 'the token appears in no log line');
  });

  it('SQLite: they share a job, answer the same for it, and a cancel on one stops the other', async (t) => {
    const emulator = await startEmulator({ sessions: N, tenant: 'demo', botId: 'demo-bot' });
    t.after(() => emulator.close());
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-replicas-state-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await scenario(t, join(dir, 'state.sqlite'), emulator);
  });
});

const db = await testDatabase('serve_replicas');
if (db !== undefined)
  describe('serve: two replicas on one PostgreSQL store', () => {
    it('PostgreSQL: they share a job, answer the same for it, and a cancel on one stops the other', async (t) => {
      const emulator = await startEmulator({ sessions: N, tenant: 'demo', botId: 'demo-bot' });
      t.after(() => emulator.close());
      await scenario(t, await db.freshSchema(), emulator);
    });
  });

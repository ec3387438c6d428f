/**
 * Replica takeover, end to end (issue 20 §3): three `cognigy-reset serve` processes on one PostgreSQL
 * database with a short chunk lease, one engine emulator process, and a job of 20,000 sessions created on
 * the first replica. Once chunks are leased on several replicas, the one holding most is SIGKILLed. The
 * job still succeeds, read alike from each survivor; every session is verified and reset on the engine,
 * few are sent twice (the emulator's `resetsPerSession`); `audit verify` passes with one record per
 * recorded outcome.
 *
 * The service has no webhook sink, so the outbox is proven where it exists: three `reset
 * --analytics-url` runs at once on the same store and webhook, delivering from one outbox with claims.
 * Real child processes throughout; every wait has a deadline.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type CliRun, parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { testDatabase } from './helpers/postgres.js';
import {
  FINISHED,
  firstLine,
  type JobView,
  lines,
  pollJob,
  type Replica,
  warnings,
} from './helpers/replicas.js';
import { withDeadline } from './helpers/ws.js';

const db = await testDatabase('takeover');
const N = 20_000;
/** Sessions of each of the three outbox runs, after the takeover job's. */
const OUTBOX_EACH = 600;
const LEASE_SEC = 3;
/** The share of sessions recorded before the kill: chunks are then mid-way, with sends in flight. */
const KILL_AFTER = 0.1;
/** A deadline, not a goal: on a quiet machine the job takes seconds; on two busy cores, far longer. */
const END_WITHIN_MS = 150_000;
/** At most this share of sessions may get a second reset directive. */
const TWICE_AT_MOST = 0.01;
const ids = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `session-${from + i}`);

if (db !== undefined) {
  describe('three serve replicas on one PostgreSQL database', () => {
    let engine: CliRun;
    let wsUrl: string;
    let httpUrl: string;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'cr-takeover-'));
      engine = startCli(['emulator', '--sessions', String(N + 3 * OUTBOX_EACH)], {});
      await waitForOutput(engine, (out) => out.includes('\n'));
      ({ wsUrl, httpUrl } = firstLine(engine.stdout()) as { wsUrl: string; httpUrl: string });
    });
    after(async () => {
      engine.child.kill('SIGTERM');
      await withDeadline(engine.done, 15_000, 'the emulator to stop');
      rmSync(dir, { recursive: true, force: true });
    });

    /** A replica in a folder of its own, as on a host of its own: it shares only the database. */
    async function replica(t: TestContext, store: string, config: string, n: number): Promise<Replica> {
      const cwd = mkdtempSync(join(dir, `replica-${n}-`));
      const run = startCli(
        ['serve', '--config', config, '--store', store, '--port', '0', '--lease', String(LEASE_SEC)],
        { TAKEOVER_TOKEN: 'dev-token' },
        undefined,
        cwd,
      );
      t.after(() => run.child.kill('SIGKILL'));
      await waitForOutput(run, (out) => out.includes('\n'));
      return { n, run, url: (firstLine(run.stdout()) as { url: string }).url, pid: run.child.pid! };
    }

    it('finishes a job of 20,000 sessions when the replica holding most chunks is SIGKILLed: every session verified, ≤ 1 % sent twice, one audit record per outcome', async (t) => {
      const store = await db.freshSchema();
      // The tenant's analytics webhook: each outcome's event, through the store's outbox.
      const events = new Map<string, { sessionId: string; n: number }>();
      const receiver = createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (c: string) => (body += c));
        req.on('end', () => {
          const posted = JSON.parse(body) as { events: { idempotencyKey: string; sessionId: string }[] };
          for (const e of posted.events) {
            const seen = events.get(e.idempotencyKey);
            events.set(e.idempotencyKey, { sessionId: e.sessionId, n: (seen?.n ?? 0) + 1 });
          }
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      t.after(() => receiver.close());
      const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
      const config = join(dir, 'serve.json');
      writeFileSync(
        config,
        JSON.stringify({
          rateLimitPerMinute: 1_000_000,
          tenants: {
            acme: {
              transport: 'runtime-ws',
              url: wsUrl,
              tokenEnv: 'TAKEOVER_TOKEN',
              bot: 'bot-1',
              analyticsUrl: hook,
            },
          },
        }),
      );
      // Started together: the migrations run once, under the advisory lock.
      const replicas = await Promise.all([1, 2, 3].map((n) => replica(t, store, config, n)));
      const made = await runCli(
        ['keys', 'create', '--scope', 'jobs:read,jobs:write,audit:read', '--store', store],
        {},
      );
      assert.equal(made.code, 0, made.stderr);
      const { key } = JSON.parse(made.stdout) as { key: string };
      const auth = { authorization: `Bearer ${key}` };

      const res = await fetch(`${replicas[0]!.url}/v1/jobs`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ tenant: 'acme', sessions: ids(N), reason: 'takeover test' }),
      });
      assert.equal(res.status, 201, await res.clone().text());
      const { id } = (await res.json()) as { id: string };

      // Chunks leased on several replicas, the job not yet done: the replica holding most dies. The
      // view names who holds claims; how many each holds is the store's to say.
      let holders = new Map<string, number>();
      const leased = await pollJob(replicas[0]!, auth, id, async (v) => {
        holders = await liveClaims(store, id);
        const recorded = v.counts.reset + v.counts.skipped + v.counts.failed;
        return FINISHED.has(v.state) || (holders.size >= 2 && recorded >= KILL_AFTER * N);
      });
      assert.equal(leased.state, 'running', `the job ended before the kill: ${JSON.stringify(leased)}`);
      const [owner] = [...holders].sort((a, b) => b[1] - a[1])[0]!;
      const victim = replicas.find((r) => ownerPid(owner) === r.pid);
      assert.ok(
        victim !== undefined,
        `no replica has the pid of ${owner}: ${replicas.map((r) => r.pid).join(', ')}`,
      );
      const killedAt = Date.now();
      victim.run.child.kill('SIGKILL');
      const killed = await withDeadline(victim.run.done, 10_000, 'the victim to die');
      assert.equal(killed.signal, 'SIGKILL');
      const survivors = replicas.filter((r) => r !== victim);

      const last = await pollJob(survivors[0]!, auth, id, (v) => FINISHED.has(v.state), END_WITHIN_MS);
      assert.equal(
        last.state,
        'succeeded',
        `${JSON.stringify(last)}\n${survivors.map((r) => warnings(r)).join('\n')}`,
      );
      const afterKillSec = (Date.now() - killedAt) / 1000;
      // The victim's chunks were finished by the others.
      const [takenOver] = await db.sql<{ n: number }>(
        'SELECT count(*)::int AS n FROM job_chunks WHERE job_id = $1 AND previous_owner = $2 AND done',
        [id, owner],
        store,
      );
      assert.ok(takenOver!.n >= 1, `no chunk of ${owner} was taken over`);
      // The job's state and counts are the store's: each survivor answers the same.
      const views = await Promise.all(
        survivors.map(
          async (r) => (await (await fetch(`${r.url}/v1/jobs/${id}`, { headers: auth })).json()) as JobView,
        ),
      );
      for (const view of views) {
        assert.equal(view.state, 'succeeded');
        assert.deepEqual(view.counts, views[0]!.counts, `replica views differ: ${JSON.stringify(views)}`);
      }
      const { counts } = views[0]!;
      assert.equal(counts.total, N);
      assert.equal(counts.verified, N, JSON.stringify(counts));
      assert.equal(counts.failed, 0, JSON.stringify(counts));
      assert.equal(counts.reset + counts.skipped, N, JSON.stringify(counts));

      // The engine's side: each session reset, few twice.
      const stats = (await (await fetch(`${httpUrl}/emulator/stats`)).json()) as {
        resetsPerSession: Record<string, number>;
      };
      const perSession = stats.resetsPerSession;
      const reached = Object.values(perSession).reduce((a, b) => a + b, 0);
      const twice = reached - (perSession['1'] ?? 0);
      t.diagnostic(
        `killed replica ${victim.n} holding ${holders.get(owner)} chunks (live claims ` +
          `${JSON.stringify([...holders.values()])}) with ${leased.counts.reset} sessions reset; ${takenOver!.n} of its chunks taken over; the job ended ` +
          `${afterKillSec.toFixed(1)} s later; counts ${JSON.stringify(counts)}; resets per session ` +
          `${JSON.stringify(perSession)}`,
      );
      assert.equal(reached, N, `sessions reset on the engine: ${JSON.stringify(perSession)}`);
      assert.ok(
        twice <= TWICE_AT_MOST * N,
        `${twice} sessions were sent twice: ${JSON.stringify(perSession)}`,
      );
      for (const sessionId of ['session-1', `session-${N / 2}`, `session-${N}`]) {
        const s = (await (await fetch(`${httpUrl}/emulator/sessions/${sessionId}`)).json()) as {
          flowState: string;
          variables: object;
        };
        assert.deepEqual([s.flowState, s.variables], ['RESET', {}], sessionId);
      }

      // The outcomes, from a survivor: every session once, none failed.
      const outcomes = lines(
        await (await fetch(`${survivors[1]!.url}/v1/jobs/${id}/outcomes`, { headers: auth })).text(),
      ) as { sessionId: string; outcome: string; verified: boolean }[];
      assert.equal(new Set(outcomes.map((o) => o.sessionId)).size, N);
      // Once each: the lines the dead replica wrote stand, and its successor does not list them again.
      assert.equal(outcomes.length, N, 'each session listed once');
      assert.ok(outcomes.every((o) => o.outcome !== 'failed' && o.verified));

      // The audit chain verifies, with one record per recorded outcome.
      const verify = await runCli(['audit', 'verify', '--store', store], {});
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      const exported = await runCli(['audit', 'export', '--store', store], {}, { timeoutMs: 30_000 });
      assert.equal(exported.code, 0, exported.stderr);
      const records = lines(exported.stdout) as { sessionId: string; outcome: string; verified: boolean }[];
      assert.equal((JSON.parse(verify.stdout) as { records: number }).records, records.length);
      const bySession = new Map<string, string[]>();
      for (const r of records) bySession.set(r.sessionId, [...(bySession.get(r.sessionId) ?? []), r.outcome]);
      const repeated = [...bySession].filter(([, list]) => list.length > 1);
      assert.deepEqual(
        repeated.slice(0, 20),
        [],
        `${repeated.length} sessions have more than one audit record`,
      );
      assert.equal(bySession.size, N);
      const tally = (outcome: string): number => records.filter((r) => r.outcome === outcome).length;
      assert.deepEqual([tally('reset'), tally('skipped')], [counts.reset, counts.skipped]);
      assert.ok(records.every((r) => r.verified));

      // The outbox: an event for each recorded outcome, delivered by the survivors' standing deliverers
      // (those the dead replica had claimed once its claims lapsed), and the outbox emptied. A post the
      // dead replica had in flight may be delivered again (the receiver dedupes by idempotency key): at
      // most one batch.
      const outboxLeft = async (): Promise<number> =>
        (await db.sql<{ n: number }>('SELECT count(*)::int AS n FROM outbox', [], store))[0]!.n;
      await withDeadline(
        (async () => {
          while (events.size < records.length || (await outboxLeft()) > 0)
            await new Promise((resolve) => setTimeout(resolve, 100));
        })(),
        60_000,
        'every outbox event delivered and the outbox empty',
      ).catch(async (err: unknown) => {
        throw new Error(
          `${(err as Error).message}: ${events.size} of ${records.length} delivered, ${await outboxLeft()} in the outbox\n${survivors.map((r) => warnings(r)).join('\n')}`,
        );
      });
      const keys = new Set(events.keys());
      const sessions = new Set([...events.values()].map((e) => e.sessionId));
      assert.equal(keys.size, records.length, 'one event per recorded outcome');
      assert.equal(sessions.size, N, 'an event for every session');
      const again = [...events.values()].filter((e) => e.n > 1).length;
      t.diagnostic(`outbox: ${events.size} events delivered, ${again} delivered more than once`);
      assert.ok(again <= 500, `${again} events delivered more than once`);
    });

    it('delivers each outbox event once when three reset runs share the store and the webhook', async (t) => {
      const store = await db.freshSchema();
      const received = new Map<string, number>();
      let posts = 0;
      const receiver = createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (c: string) => (body += c));
        req.on('end', () => {
          posts++;
          // The first posts are refused: events pile up in the outbox while the three runs claim them.
          if (posts <= 3) {
            res.writeHead(503).end();
            return;
          }
          for (const event of (JSON.parse(body) as { events: { idempotencyKey: string }[] }).events)
            received.set(event.idempotencyKey, (received.get(event.idempotencyKey) ?? 0) + 1);
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      t.after(() => receiver.close());
      const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
      const runs = await Promise.all(
        [0, 1, 2].map((k) =>
          runCli(
            [
              'reset',
              ...['--from-file', '-', '--store', store, '--job', `outbox-${k}`, '--json'],
              ...['--analytics-url', hook, '--analytics-batch', '50'],
            ],
            {
              COGNIGY_WS_URL: wsUrl,
              COGNIGY_TENANT_ID: 'acme',
              COGNIGY_BOT_ID: 'bot-1',
              COGNIGY_API_TOKEN: 'dev-token',
            },
            { stdin: `${ids(OUTBOX_EACH, N + 1 + k * OUTBOX_EACH).join('\n')}\n` },
          ),
        ),
      );
      let delivered = 0;
      for (const run of runs) {
        assert.equal(run.code, 0, run.stderr);
        const summary = parseJsonLines(run.stdout).summary!;
        assert.equal(summary['verified'], OUTBOX_EACH);
        delivered += (summary['analytics'] as { delivered: number }).delivered;
      }
      const twice = [...received].filter(([, n]) => n > 1);
      assert.deepEqual(twice.slice(0, 10), [], `${twice.length} events were delivered more than once`);
      assert.equal(received.size, 3 * OUTBOX_EACH, 'every event delivered');
      assert.equal(delivered, 3 * OUTBOX_EACH, 'the runs together delivered each event once');
      const [left] = await db.sql<{ n: number }>('SELECT count(*)::int AS n FROM outbox', [], store);
      assert.equal(left!.n, 0, 'the outbox is empty');
    });
  });
}

/** Live chunk claims of a job, by owner, as the store has them now. */
async function liveClaims(store: string, jobId: string): Promise<Map<string, number>> {
  const rows = await db!.sql<{ owner: string; n: number }>(
    `SELECT owner, count(*)::int AS n FROM job_chunks
      WHERE job_id = $1 AND NOT done AND owner IS NOT NULL AND claimed_until > clock_timestamp()
      GROUP BY owner`,
    [jobId],
    store,
  );
  return new Map(rows.map((r) => [r.owner, r.n]));
}

/** The pid in a chunk owner `${hostname}/${pid}/${random}`. */
function ownerPid(owner: string): number {
  return Number(owner.split('/').at(-2));
}

import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { outboxEvent, urlFingerprint, WebhookDeliverer } from '../src/sinks/webhook.js';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { blankOutcome } from '../src/reset/outcome.js';
import { openStateFile, SCHEMA_VERSION } from '../src/store/sqlite/state-file.js';
import { openStore } from '../src/store/index.js';
import { parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { withDeadline } from './helpers/ws.js';
import { withFaults } from './helpers/faults.js';
import { parseMetrics } from './helpers/metrics.js';

let dir: string;
let emu: Emulator;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-analytics-'));
  emu = await startEmulator({ sessions: 5000 });
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

const env = (): Record<string, string> => ({
  COGNIGY_WS_URL: emu.wsUrl,
  COGNIGY_TENANT_ID: 't',
  COGNIGY_BOT_ID: 'b',
  COGNIGY_API_TOKEN: 'dev-token',
  COGNIGY_RESET_STATE: join(dir, 'default.sqlite'),
});
const range = (n: number, from: number): string[] =>
  Array.from({ length: n }, (_, i) => `session-${i + from}`);

describe('Prometheus metrics', () => {
  it('writes --metrics-file whose counts match the outcomes', async () => {
    const file = join(dir, 'metrics.prom');
    await withFaults(emu, { dropEveryFrames: 25 }, async () => {
      const result = await runCli(
        ['reset', ...range(60, 1), 'ghost-1', 'ghost-2', '--json', '--metrics-file', file],
        env(),
      );
      assert.equal(result.code, 1, result.stderr);
      const { sessions, summary } = parseJsonLines(result.stdout);
      const m = parseMetrics(readFileSync(file, 'utf8'));
      assert.equal(m.get('cognigy_reset_outcomes_total{outcome="reset",verified="true"}'), summary!.verified);
      assert.equal(m.get('cognigy_reset_outcomes_total{outcome="failed",verified="false"}'), 2);
      assert.equal(m.get('cognigy_reset_errors_total{code="CR_ERR_RESET_SESSION_NOT_FOUND"}'), 2);
      assert.equal(m.get('cognigy_reset_latency_seconds_count{outcome="reset"}'), 60);
      assert.equal(m.get('cognigy_reset_in_flight'), 0);
      const retried = sessions.filter((s) => s.attempts > 1).length;
      assert.ok(summary!.retried >= retried);
      assert.equal(m.get('cognigy_reset_retried_sessions_total'), summary!.retried);
      assert.equal(m.get('cognigy_reset_recovered_sessions_total'), summary!.recovered);
      assert.ok((m.get('cognigy_reset_verification_polls_total{flow_state="RESET"}') ?? 0) >= 60);
      const rate = m.get('cognigy_reset_recovery_rate')!;
      assert.ok(Math.abs(rate - summary!.recovered / 62) < 1e-9, `recovery rate ${rate}`);
    });
  });

  it('serves /metrics on --metrics-port while the run lasts', async () => {
    await withFaults(emu, { latencyMs: 25 }, async () => {
      const run = startCli(
        ['reset', ...range(60, 100), '--concurrency', '2', '--metrics-port', '0', '--no-progress'],
        env(),
      );
      const url = await withDeadline(
        new Promise<string>((resolve) => {
          const check = (): void => {
            const match = /metrics: (http:\/\/\S+)/.exec(run.stderr());
            if (match) resolve(match[1]!);
          };
          run.child.stderr!.on('data', check);
          check();
        }),
        15_000,
        'the metrics URL',
      );
      const response = await fetch(url);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
      const m = parseMetrics(await response.text());
      assert.ok(m.has('cognigy_reset_in_flight'));
      const result = await withDeadline(run.done, 30_000, 'the run');
      assert.equal(result.code, 0);
    });
  });
  it('refuses a --metrics-file it could never write before sending; a late write failure keeps the summary', async () => {
    const missing = await runCli(
      ['reset', 'session-1', '--metrics-file', join(dir, 'no-such-dir', 'm.prom')],
      env(),
    );
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(
      missing.stderr,
      /CR_ERR_OPT_INVALID: cannot write --metrics-file .*: the directory .* does not exist/,
    );
    assert.equal(missing.stdout, '');

    // The directory goes away during the run: the outcomes and the summary are still printed.
    const gone = mkdtempSync(join(dir, 'metrics-gone-'));
    await withFaults(emu, { latencyMs: 20 }, async () => {
      const run = startCli(
        ['reset', ...range(30, 200), '--json', '--concurrency', '2', '--metrics-file', join(gone, 'm.prom')],
        env(),
      );
      await waitForOutput(run, (out) => out.includes('\n'));
      rmSync(gone, { recursive: true, force: true });
      const result = await withDeadline(run.done, 30_000, 'the run');
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /CR_ERR_CLI_OUTPUT: cannot write --metrics-file .*m\.prom: ENOENT/);
      const { sessions, summary } = parseJsonLines(result.stdout);
      assert.equal(sessions.length, 30);
      assert.equal(summary!.verified, 30);
    });
  });

  it('refuses a --metrics-port already in use with CR_ERR_OPT_LISTEN, before sending or writing', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    const state = join(dir, 'metrics-port-in-use.sqlite');
    const before = emu.stats().connectionsTotal;
    try {
      const result = await runCli(
        ['reset', 'session-1', '--metrics-port', String(port), '--state', state],
        env(),
        { timeoutMs: 20_000 },
      );
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `CR_ERR_OPT_LISTEN: cannot listen on 127\\.0\\.0\\.1:${port} \\(--metrics-port\\): the address is in use`,
        ),
      );
      assert.equal(emu.stats().connectionsTotal, before);
      assert.equal(existsSync(state), false);
    } finally {
      holder.close();
    }
  });
});

/** A tracker that fails, times out and recovers as told; it records which keys it accepted (2xx). */
class Tracker {
  readonly accepted: string[] = [];
  readonly received: string[] = [];
  /** The number of events in each POST. */
  readonly batches: number[] = [];
  /** The Authorization header of each POST. */
  readonly authorizations: (string | undefined)[] = [];
  /** Requests that were not POSTs (a client following a redirect as a GET). */
  gets = 0;
  /** When set, a POST without `Authorization: Bearer <this>` is answered 401. */
  requireToken: string | undefined;
  script: ('fail' | 'hang' | 'ok' | 'redirect')[] = [];
  server: Server;
  url = '';
  readonly #hung: ServerResponse[] = [];

  constructor() {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== 'POST') {
        this.gets++;
        res.writeHead(200).end('{}');
        return;
      }
      this.authorizations.push(req.headers.authorization);
      if (this.requireToken !== undefined && req.headers.authorization !== `Bearer ${this.requireToken}`) {
        req.resume();
        res.writeHead(401).end();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const keys = (
          JSON.parse(Buffer.concat(chunks).toString()) as { events: { idempotencyKey: string }[] }
        ).events.map((e) => e.idempotencyKey);
        this.received.push(...keys);
        this.batches.push(keys.length);
        const step = this.script.shift() ?? 'ok';
        if (step === 'fail') res.writeHead(503, { 'retry-after': '0' }).end();
        else if (step === 'redirect') res.writeHead(302, { location: '/landing' }).end();
        else if (step === 'hang') this.#hung.push(res);
        else {
          // The receiver's side of exactly once: a repeated key is acknowledged but not applied again.
          for (const key of keys) if (!this.accepted.includes(key)) this.accepted.push(key);
          res.writeHead(200).end('{}');
        }
      });
    });
  }

  async listen(port = 0): Promise<void> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/events`;
  }

  async close(): Promise<void> {
    for (const res of this.#hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Runs `body` with a listening tracker, and closes it whatever happens. */
async function withTracker(body: (tracker: Tracker) => Promise<void>): Promise<void> {
  const tracker = new Tracker();
  await tracker.listen();
  try {
    await body(tracker);
  } finally {
    await tracker.close();
  }
}

describe('webhook sink', () => {
  it('delivers each event exactly once through failures, a timeout and recovery', async (t) => {
    const tracker = new Tracker();
    t.after(() => tracker.close());
    await tracker.listen();
    tracker.script = ['fail', 'fail', 'hang', 'ok'];
    const path = join(dir, 'outbox.sqlite');
    const store = await openStore(path, { writerThread: false });
    const writer = await store.writer();
    const events = Array.from({ length: 250 }, (_, i) =>
      outboxEvent(blankOutcome(`session-${i}`, 'reset', []), {
        urlSha256: urlFingerprint(tracker.url),
        jobId: null,
        tenant: 't',
        botId: 'b',
      }),
    );
    await Promise.all(events.map((outbox) => writer.append({ outbox })));
    const deliverer = new WebhookDeliverer(store, {
      url: tracker.url,
      timeoutMs: 300,
      baseDelayMs: 10,
      batchSize: 100,
    });
    await deliverer.deliver(Date.now() + 20_000);
    assert.equal(await deliverer.countPending(), 0);
    // Delivered events leave the outbox: a run of millions must not keep them in the state file.
    const db = new Database(path, { readonly: true });
    assert.equal((db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n, 0);
    db.close();
    const keys = events.map((e) => e.key).sort();
    assert.deepEqual([...tracker.accepted].sort(), keys);
    assert.ok(tracker.received.length > keys.length, 'the failures and the timeout caused no redelivery');
    assert.ok(deliverer.stats.failures >= 3);
    await writer.close();
    await store.close();
  });

  it('a standing deliverer takes over the events another deliverer claimed and never posted, once its claim lapses, with no new run', async (t) => {
    const tracker = new Tracker();
    t.after(() => tracker.close());
    await tracker.listen();
    const store = await openStore(join(dir, 'standing.sqlite'), { writerThread: false });
    t.after(() => store.close());
    const writer = await store.writer();
    const urlSha256 = urlFingerprint(tracker.url);
    const events = Array.from({ length: 40 }, (_, i) =>
      outboxEvent(blankOutcome(`session-${i}`, 'reset', []), {
        urlSha256,
        jobId: null,
        tenant: 't',
        botId: 'b',
      }),
    );
    await Promise.all(events.map((outbox) => writer.append({ outbox })));
    await writer.close();
    // A deliverer of a process that died mid-POST: the first 10 events stay claimed for a while.
    const claimed = await store.claimOutbox(urlSha256, { limit: 10, owner: 'webhook/dead', leaseMs: 400 });
    assert.equal(claimed.length, 10);
    const deliverer = new WebhookDeliverer(store, { url: tracker.url, batchSize: 15, resumeAfterMs: 1000 });
    deliverer.start();
    t.after(() => deliverer.stop(Date.now() + 1000));
    await withDeadline(
      (async () => {
        while (tracker.accepted.length < events.length)
          await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      10_000,
      'every event delivered',
    );
    assert.deepEqual([...tracker.accepted].sort(), events.map((e) => e.key).sort());
    assert.equal(tracker.received.length, events.length, 'no event posted twice');
    const stats = await deliverer.stop(Date.now() + 1000);
    assert.deepEqual([stats.delivered, stats.pending], [40, 0]);
  });

  it('gives a tracker that never answers --analytics-timeout and no more; its events wait in the outbox', async () => {
    await withTracker(async (tracker) => {
      tracker.script = Array.from({ length: 50 }, () => 'hang' as const);
      const state = join(dir, 'webhook-hangs.sqlite');
      // A request may take 5 s before it is given up; the run must not wait for that.
      const result = await runCli(
        [
          'reset',
          ...range(10, 500),
          '--state',
          state,
          '--analytics-url',
          tracker.url,
          '--analytics-timeout',
          '0.2',
        ],
        env(),
        { timeoutMs: 4000 },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        /analytics: 0 events delivered; 10 wait in the outbox for the next run \(last failure: timed out\)/,
      );
      assert.ok(tracker.received.length > 0, 'nothing was posted');
    });
  });

  it('keeps events in the outbox while the tracker is down and delivers them on the next run', async (t) => {
    const tracker = new Tracker();
    await tracker.listen();
    const url = tracker.url;
    const port = Number(new URL(url).port);
    await tracker.close(); // down for the first run
    const state = join(dir, 'webhook.sqlite');
    const first = await runCli(
      ['reset', ...range(20, 300), '--state', state, '--analytics-url', url, '--analytics-timeout', '1'],
      env(),
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stderr,
      /analytics: 0 events delivered; 20 wait in the outbox for the next run \(last failure: ECONNREFUSED\)/,
    );

    const up = new Tracker();
    t.after(() => up.close());
    await up.listen(port);
    const second = await runCli(['reset', ...range(5, 400), '--state', state, '--analytics-url', url], env());
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /analytics: 25 events delivered\n/);
    assert.equal(up.accepted.length, 25);
    assert.equal(new Set(up.received).size, up.received.length, 'an event was posted twice');
  });
  it('sends the tracker its token as a bearer header, and keeps it and the URL out of output and the state file', async () => {
    await withTracker(async (tracker) => {
      // A webhook URL often carries its own secret, as this one does in its query.
      const url = `${tracker.url}?key=url-secret-4711`;
      const state = join(dir, 'webhook-token.sqlite');
      const tokenFile = join(dir, 'analytics-token');
      writeFileSync(tokenFile, 'file-token-0815\n');
      const byFile = await runCli(
        [
          'reset',
          ...range(5, 600),
          '--state',
          state,
          '--analytics-url',
          url,
          '--analytics-token-file',
          tokenFile,
        ],
        env(),
      );
      assert.equal(byFile.code, 0, byFile.stderr);
      assert.match(byFile.stderr, /analytics: 5 events delivered\n/);
      const byEnv = await runCli(['reset', ...range(5, 610), '--state', state, '--analytics-url', url], {
        ...env(),
        COGNIGY_ANALYTICS_TOKEN: 'env-token-4242',
      });
      assert.equal(byEnv.code, 0, byEnv.stderr);
      assert.match(byEnv.stderr, /analytics: 5 events delivered\n/);
      assert.deepEqual(
        new Set(tracker.authorizations),
        new Set(['Bearer file-token-0815', 'Bearer env-token-4242']),
      );
      assert.equal(tracker.accepted.length, 10);
      const stored = Buffer.concat(
        [state, `${state}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)),
      ).toString('latin1');
      for (const secret of ['file-token-0815', 'env-token-4242', 'url-secret-4711']) {
        assert.ok(!stored.includes(secret), `${secret} is in the state file`);
        assert.ok(
          !`${byFile.stdout}${byFile.stderr}${byEnv.stdout}${byEnv.stderr}`.includes(secret),
          `${secret} was printed`,
        );
      }
    });
  });

  it('stops delivering for the run when the tracker refuses the token, says why, and delivers on the next run', async () => {
    await withTracker(async (tracker) => {
      tracker.requireToken = 'right-token-1234';
      const state = join(dir, 'webhook-401.sqlite');
      const refused = await runCli(
        [
          'reset',
          ...range(6, 650),
          '--state',
          state,
          '--analytics-url',
          tracker.url,
          '--json',
          '--log-level',
          'debug',
        ],
        { ...env(), COGNIGY_ANALYTICS_TOKEN: 'wrong-token-5678' },
      );
      assert.equal(refused.code, 0, refused.stderr);
      assert.equal(tracker.authorizations.length, 1, 'a 401 was retried');
      assert.match(
        refused.stderr,
        /analytics: 0 events delivered; 6 wait in the outbox for the next run \(the tracker refused them: HTTP 401\)/,
      );
      const summary = parseJsonLines(refused.stdout).summary!;
      assert.deepEqual(summary.analytics, {
        delivered: 0,
        pending: 6,
        lastFailure: 'HTTP 401',
        stopped: 'the tracker refused them: HTTP 401',
        otherUrls: 0,
      });
      const warning = refused.stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; reason?: string; retryable?: boolean })
        .find((entry) => entry.reason === 'HTTP 401');
      assert.equal(warning?.level, 40, 'no warning in the log');
      assert.equal(warning.retryable, false);
      assert.ok(!refused.stderr.includes('wrong-token-5678'), 'the token was logged');

      const accepted = await runCli(
        ['reset', ...range(2, 660), '--state', state, '--analytics-url', tracker.url, '--json'],
        { ...env(), COGNIGY_ANALYTICS_TOKEN: 'right-token-1234' },
      );
      assert.equal(accepted.code, 0, accepted.stderr);
      const after = parseJsonLines(accepted.stdout).summary!;
      assert.deepEqual(after.analytics, {
        delivered: 8,
        pending: 0,
        lastFailure: null,
        stopped: null,
        otherUrls: 0,
      });
      assert.equal(tracker.accepted.length, 8);
    });
  });

  it('stops delivering when the state file cannot record a delivery, keeps the summary, and loses no event', async () => {
    await withTracker(async (tracker) => {
      const state = join(dir, 'webhook-full.sqlite');
      // A full disk, as far as the outbox is concerned: recording a delivery (deleting the event) fails.
      openStateFile(state).close();
      const db = new Database(state);
      db.exec(`CREATE TRIGGER outbox_full BEFORE DELETE ON outbox
      BEGIN SELECT RAISE(FAIL, 'database or disk is full (test)'); END;`);
      db.close();
      // Long enough (300 at 300 a second) that events are delivered while the run lasts, when the
      // writer thread deletes them: its failure must neither fail the audit records it commits with
      // them nor go unreported.
      const full = await runCli(
        [
          'reset',
          ...range(300, 4500),
          '--rate',
          '300',
          '--state',
          state,
          '--analytics-url',
          tracker.url,
          '--json',
        ],
        env(),
      );
      assert.equal(full.code, 0, full.stderr);
      const lines = parseJsonLines(full.stdout);
      assert.equal(lines.sessions.length, 300);
      assert.equal(lines.summary!['verified'], 300);
      const analytics = lines.summary!['analytics'] as {
        delivered: number;
        pending: number;
        stopped: string;
      };
      assert.match(
        analytics.stopped,
        /the state file could not be read or written: database or disk is full/,
      );
      assert.equal(analytics.pending, 300);
      assert.match(
        full.stderr,
        /300 wait in the outbox for the next run \(the state file could not be read or written/,
      );
      assert.ok(tracker.accepted.length > 0, 'nothing reached the tracker');

      const fixed = new Database(state);
      fixed.exec('DROP TRIGGER outbox_full');
      fixed.close();
      const next = await runCli(
        ['reset', ...range(1, 690), '--state', state, '--analytics-url', tracker.url],
        env(),
      );
      assert.equal(next.code, 0, next.stderr);
      assert.match(next.stderr, /analytics: 301 events delivered\n/);
      assert.equal(tracker.accepted.length, 301, 'an event was lost or applied twice');
      const verify = await runCli(['audit', 'verify', '--state', state], {});
      assert.equal(verify.code, 0, verify.stdout);
      assert.equal(JSON.parse(verify.stdout).records, 301);
    });
  });

  it('stops delivering, and says why, when its own connection cannot record a delivery', async () => {
    await withTracker(async (tracker) => {
      const path = join(dir, 'outbox-full.sqlite');
      const store = await openStore(path, { writerThread: false });
      const writer = await store.writer();
      const urlSha256 = urlFingerprint(tracker.url);
      await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          writer.append({
            outbox: outboxEvent(blankOutcome(`session-${i}`, 'reset', []), {
              urlSha256,
              jobId: null,
              tenant: 't',
              botId: 'b',
            }),
          }),
        ),
      );
      const db = new Database(path);
      db.exec(`CREATE TRIGGER outbox_full BEFORE DELETE ON outbox
        BEGIN SELECT RAISE(FAIL, 'database or disk is full (test)'); END;`);
      db.close();
      const failures: string[] = [];
      const deliverer = new WebhookDeliverer(store, {
        url: tracker.url,
        onFailure: ({ reason }) => failures.push(reason),
      });
      const stats = await deliverer.stop(Date.now() + 5000);
      assert.match(stats.stopped ?? '', /could not be read or written: database or disk is full \(test\)/);
      assert.deepEqual(failures, [stats.stopped]);
      assert.equal(stats.pending, 5);
      assert.equal(tracker.batches.length, 1, 'it went on posting');
      await writer.close();
      await store.close();
    });
  });

  it('delivers a bulk run while it lasts, each event once, and leaves the outbox empty', async () => {
    await withTracker(async (tracker) => {
      const state = join(dir, 'webhook-bulk.sqlite');
      const ids = range(3000, 1001);
      // Deliveries are deleted by the writer thread a batch later, while the outbox keeps emptying and
      // filling: an event must neither be posted twice nor be passed over.
      const result = await runCli(
        ['reset', '--from-file', '-', '--state', state, '--analytics-url', tracker.url, '--json'],
        env(),
        { stdin: `${ids.join('\n')}\n` },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /analytics: 3000 events delivered\n/);
      assert.equal(tracker.received.length, 3000, 'an event was posted twice');
      assert.equal(tracker.accepted.length, 3000);
      const db = new Database(state, { readonly: true });
      assert.equal((db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n, 0);
      db.close();
    });
  });

  it('delivers every event of a slow run, whose outbox empties between events', async () => {
    await withTracker(async (tracker) => {
      const state = join(dir, 'webhook-slow.sqlite');
      // At 150 resets a second the deliverer catches up again and again: the outbox runs empty, and an
      // event written after that must not get an id the deliverer has already read past.
      const result = await runCli(
        ['reset', ...range(300, 4101), '--rate', '150', '--state', state, '--analytics-url', tracker.url],
        env(),
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /analytics: 300 events delivered\n/);
      assert.equal(tracker.received.length, 300, 'an event was posted twice');
    });
  });

  it('posts at most --analytics-batch events at a time, and refuses a batch size it cannot use', async () => {
    await withTracker(async (tracker) => {
      const state = join(dir, 'webhook-batch.sqlite');
      const result = await runCli(
        [
          'reset',
          ...range(7, 800),
          '--state',
          state,
          '--analytics-url',
          tracker.url,
          '--analytics-batch',
          '3',
        ],
        env(),
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /analytics: 7 events delivered\n/);
      assert.ok(Math.max(...tracker.batches) <= 3, `batches of ${tracker.batches.join(', ')}`);
      assert.equal(
        tracker.batches.reduce((a, b) => a + b, 0),
        7,
      );
      for (const bad of ['0', '2.5', 'many']) {
        const refused = await runCli(
          [
            'reset',
            'session-810',
            '--state',
            state,
            '--analytics-url',
            tracker.url,
            '--analytics-batch',
            bad,
          ],
          env(),
        );
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, /CR_ERR_OPT_INVALID.*--analytics-batch/);
      }
    });
    const session = (await (await fetch(`${emu.httpUrl}/emulator/sessions/session-810`)).json()) as {
      flowState: string;
    };
    assert.equal(session.flowState, 'ACTIVE', 'a refused run reset a session');
  });

  it("says when another webhook URL's events wait in the outbox, and leaves them for a run with that URL", async () => {
    const gone = new Tracker();
    await gone.listen();
    const oldUrl = `${gone.url}?key=old`;
    await gone.close(); // the old URL's tracker is not there
    const state = join(dir, 'webhook-two-urls.sqlite');
    const first = await runCli(
      ['reset', ...range(3, 780), '--state', state, '--analytics-url', oldUrl, '--analytics-timeout', '0.3'],
      env(),
    );
    assert.equal(first.code, 0, first.stderr);
    await withTracker(async (tracker) => {
      const second = await runCli(
        ['reset', ...range(2, 790), '--state', state, '--analytics-url', tracker.url, '--json'],
        env(),
      );
      assert.equal(second.code, 0, second.stderr);
      assert.match(
        second.stderr,
        /analytics: 2 events delivered; 3 events for another webhook URL wait too \(a run with that --analytics-url delivers them\)\n/,
      );
      assert.equal(
        (parseJsonLines(second.stdout).summary!['analytics'] as { otherUrls: number }).otherUrls,
        3,
      );
      assert.equal(tracker.accepted.length, 2, "another URL's events went to this tracker");
    });
  });

  it('counts deliveries, failed POSTs and the backlog in the metrics, after the final drain', async () => {
    await withTracker(async (tracker) => {
      const state = join(dir, 'webhook-metrics.sqlite');
      const file = join(dir, 'webhook-metrics.prom');
      tracker.script = ['fail', 'fail'];
      const ok = await runCli(
        [
          'reset',
          ...range(15, 740),
          '--state',
          state,
          '--analytics-url',
          tracker.url,
          '--metrics-file',
          file,
        ],
        env(),
      );
      assert.equal(ok.code, 0, ok.stderr);
      let metrics = parseMetrics(readFileSync(file, 'utf8'));
      assert.equal(metrics.get('cognigy_reset_analytics_events_delivered_total'), 15);
      assert.equal(metrics.get('cognigy_reset_analytics_post_failures_total{retryable="true"}'), 2);
      assert.equal(metrics.get('cognigy_reset_analytics_events_pending'), 0);

      tracker.requireToken = 'not-this-one';
      const refused = await runCli(
        ['reset', ...range(5, 760), '--state', state, '--analytics-url', tracker.url, '--metrics-file', file],
        env(),
      );
      assert.equal(refused.code, 0, refused.stderr);
      metrics = parseMetrics(readFileSync(file, 'utf8'));
      assert.equal(metrics.get('cognigy_reset_analytics_events_delivered_total'), 0);
      assert.equal(metrics.get('cognigy_reset_analytics_post_failures_total{retryable="false"}'), 1);
      assert.equal(metrics.get('cognigy_reset_analytics_events_pending'), 5);
      assert.equal(tracker.accepted.length, 15);
    });
  });

  it('refuses an unusable analytics token before sending, without showing it', async () => {
    const state = join(dir, 'webhook-bad-token.sqlite');
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ['--analytics-url', 'http://127.0.0.1:9/e'],
        { COGNIGY_ANALYTICS_TOKEN: 'two words-secret' },
        /COGNIGY_ANALYTICS_TOKEN/,
      ],
      [
        ['--analytics-url', 'http://127.0.0.1:9/e', '--analytics-token-file', join(dir, 'missing')],
        {},
        /cannot read --analytics-token-file/,
      ],
      [['--analytics-token-file', join(dir, 'missing')], {}, /--analytics-token-file needs --analytics-url/],
    ];
    for (const [args, extra, message] of cases) {
      const result = await runCli(['reset', 'session-700', '--state', state, ...args], {
        ...env(),
        ...extra,
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /CR_ERR_OPT_INVALID/);
      assert.match(result.stderr, message);
      assert.ok(!result.stderr.includes('words-secret'), 'the token was shown');
    }
    const session = (await (await fetch(`${emu.httpUrl}/emulator/sessions/session-700`)).json()) as {
      flowState: string;
    };
    assert.equal(session.flowState, 'ACTIVE', 'a session was reset although the run was refused');
  });

  it('counts a redirect as a failed delivery: the events wait and go out on the next run', async () => {
    await withTracker(async (tracker) => {
      // fetch would follow a 302 as a GET without the events; its 200 must not mark them delivered.
      tracker.script = Array.from({ length: 100 }, () => 'redirect' as const);
      const state = join(dir, 'webhook-redirect.sqlite');
      const first = await runCli(
        [
          'reset',
          ...range(8, 620),
          '--state',
          state,
          '--analytics-url',
          tracker.url,
          '--analytics-timeout',
          '0.3',
        ],
        env(),
      );
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stderr,
        /analytics: 0 events delivered; 8 wait in the outbox for the next run \(the tracker refused them: HTTP 302 redirect to http:\/\/127\.0\.0\.1:\d+, not followed: point --analytics-url at the final URL\)/,
      );
      assert.equal(tracker.gets, 0, 'the redirect was followed');
      assert.equal(tracker.authorizations.length, 1, 'a redirect was retried');
      assert.equal(tracker.accepted.length, 0);
      tracker.script = [];
      const second = await runCli(
        ['reset', ...range(2, 630), '--state', state, '--analytics-url', tracker.url],
        env(),
      );
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /analytics: 10 events delivered\n/);
      assert.equal(tracker.accepted.length, 10);
    });
  });

  it('upgrades a version-4 state file: its pending events keep their URL by fingerprint and still go out', async () => {
    await withTracker(async (tracker) => {
      const state = join(dir, 'webhook-v4.sqlite');
      // A version-4 outbox, as the previous release wrote it: the URL in plain text.
      openStateFile(state).close();
      const old = new Database(state);
      old.exec(`
      DROP TABLE outbox;
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, url TEXT NOT NULL, payload TEXT NOT NULL,
        created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, delivered_at TEXT
      ) STRICT;
      CREATE INDEX outbox_pending ON outbox (delivered_at, id);
      PRAGMA user_version = 4;
    `);
      const insert = old.prepare(
        'INSERT INTO outbox (idempotency_key, url, payload, created_at) VALUES (?, ?, ?, ?)',
      );
      insert.run(
        'v4-pending',
        tracker.url,
        JSON.stringify({ idempotencyKey: 'v4-pending' }),
        '2026-11-29T00:00:00Z',
      );
      insert.run(
        'v4-elsewhere',
        'http://127.0.0.1:9/other',
        JSON.stringify({ idempotencyKey: 'v4-elsewhere' }),
        '2026-11-29T00:00:00Z',
      );
      old
        .prepare(
          "INSERT INTO outbox (idempotency_key, url, payload, created_at, delivered_at) VALUES (?, ?, ?, ?, '2026-11-29T00:00:01Z')",
        )
        .run(
          'v4-delivered',
          tracker.url,
          JSON.stringify({ idempotencyKey: 'v4-delivered' }),
          '2026-11-29T00:00:00Z',
        );
      old.close();
      // Opening it upgrades it; the dropped table's pages must not keep a URL, even before anything reuses them.
      const upgraded = openStateFile(state);
      const kept = upgraded.prepare('SELECT idempotency_key AS key FROM outbox ORDER BY id').all() as {
        key: string;
      }[];
      upgraded.close();
      assert.deepEqual(
        kept.map((row) => row.key),
        ['v4-pending', 'v4-elsewhere'],
        'the upgrade kept a delivered event or lost a pending one',
      );
      assert.ok(
        !readFileSync(state).toString('latin1').includes('127.0.0.1:9/other'),
        'a URL survived the upgrade',
      );
      const run = await runCli(
        ['reset', ...range(3, 640), '--state', state, '--analytics-url', tracker.url],
        env(),
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stderr,
        /analytics: 4 events delivered; 1 event for another webhook URL waits too \(a run with that --analytics-url delivers them\)\n/,
      );
      assert.ok(tracker.accepted.includes('v4-pending'), 'the pending version-4 event was not delivered');
      assert.ok(!tracker.accepted.includes('v4-elsewhere'), "another URL's event was delivered here");
      const db = new Database(state, { readonly: true });
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      const columns = (db.prepare('PRAGMA table_info(outbox)').all() as { name: string }[]).map(
        (c) => c.name,
      );
      assert.ok(!columns.includes('url') && columns.includes('url_sha256'), columns.join(','));
      db.close();
    });
  });
});

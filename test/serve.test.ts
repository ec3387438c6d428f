/**
 * `cognigy-reset serve --emulator` and `keys` as real child processes on a real state file: the listening
 * line, a key made by the CLI, a job through the API to succeeded with its audit actor, revocation, and
 * SIGTERM.
 */
import * as assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, startCli, waitForOutput, waitForStderr } from './helpers/cli.js';
import { metricTotal, parseMetrics } from './helpers/metrics.js';
import { withDeadline } from './helpers/ws.js';

describe('serve: the command', () => {
  it('serves the emulator; a CLI-made key runs a job to succeeded; a revoked key is refused; SIGTERM exits 0', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const state = join(dir, 'state.sqlite');
    const server = startCli(
      ['serve', '--emulator', '--sessions', '100', '--port', '0', '--state', state],
      {},
    );
    t.after(() => server.child.kill('SIGKILL'));
    await waitForOutput(server, (out) => out.includes('\n'));
    const listening = JSON.parse(server.stdout().split('\n')[0]!) as { event: string; url: string };
    assert.equal(listening.event, 'listening');
    assert.match(listening.url, /^http:\/\/127\.0\.0\.1:\d+$/);

    const made = await runCli(['keys', 'create', '--scope', 'jobs:read,jobs:write', '--state', state], {});
    assert.equal(made.code, 0, made.stderr);
    const { id, key } = JSON.parse(made.stdout) as { id: string; key: string };
    assert.ok(key.length >= 26, 'at least 128 bits');
    const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const res = await fetch(`${listening.url}/v1/jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        tenant: 'demo',
        bot: 'demo-bot',
        sessions: ['session-1', 'session-2', 'session-3'],
      }),
    });
    assert.equal(res.status, 201);
    const job = (await res.json()) as { id: string };
    const events = await withDeadline(
      (await fetch(`${listening.url}/v1/jobs/${job.id}/events`, { headers: auth })).text(),
      30_000,
      'the job to finish',
    );
    const done = JSON.parse(events.trim().split('\n').pop()!.slice(6)) as {
      state: string;
      counts: Record<string, number>;
    };
    assert.equal(done.state, 'succeeded');
    assert.equal(done.counts['verified'], 3);
    // The job ran in the service's job thread: its outcomes are on the service's /metrics with the API's.
    const metrics = parseMetrics(await (await fetch(`${listening.url}/metrics`)).text());
    assert.equal(metrics.get('cognigy_reset_outcomes_total{outcome="reset",verified="true"}'), 3);
    assert.equal(metrics.get('cognigy_reset_service_jobs{state="succeeded"}'), 1);
    assert.ok(metricTotal(metrics, 'cognigy_reset_latency_seconds_count') >= 3);
    // Each answer is timed under its route's pattern, never its path (the job's id is not a label).
    const created =
      'cognigy_reset_http_request_duration_seconds_count{method="POST",route="/v1/jobs",status_code="201"}';
    assert.equal(metrics.get(created), 1);
    assert.ok(![...metrics.keys()].some((name) => name.includes(job.id)), 'no series names a job');
    assert.ok(metrics.has('nodejs_eventloop_lag_p99_seconds'), "the API thread's event-loop delay");

    // A client that leaves in the middle of its upload broke nothing of the service's: no error is logged
    // for it (read from the log at exit, long after the service saw the connection go).
    await new Promise<void>((resolve, reject) => {
      const upload = connect(Number(new URL(listening.url).port), '127.0.0.1', () => {
        upload.write(
          `POST /v1/jobs?tenant=demo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
            'Content-Type: text/csv\r\nContent-Length: 1000000\r\n\r\nsessionId\nsession-1\n',
          () => {
            upload.destroy();
            resolve();
          },
        );
      });
      upload.on('error', reject);
    });

    const listed = await runCli(['keys', 'list', '--state', state], {});
    assert.ok(!listed.stdout.includes(key), 'the key is never shown again');
    assert.ok(listed.stdout.includes(id));
    assert.equal((await runCli(['keys', 'revoke', id, '--state', state], {})).code, 0);
    const refused = await fetch(`${listening.url}/v1/jobs`, { headers: auth });
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { code: string }).code, 'CR_ERR_API_UNAUTHORIZED');
    const after = parseMetrics(await (await fetch(`${listening.url}/metrics`)).text());
    assert.equal(
      after.get(
        'cognigy_reset_http_request_duration_seconds_count{method="GET",route="/v1/jobs",status_code="401"}',
      ),
      1,
      'a refusal is timed too',
    );

    server.child.kill('SIGTERM');
    const exit = await withDeadline(server.done, 30_000, 'serve to exit');
    assert.equal(exit.code, 0, exit.stderr);
    assert.ok(!exit.stderr.includes(key), 'the key never appears in a log line');
    assert.doesNotMatch(exit.stderr, /"level":50/, 'no error was logged');
  });
});

describe('serve: a stop in the middle of a job', () => {
  it('SIGTERM lets in-flight sessions finish; the next start runs the job on, and no session is reset twice', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-resume-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const state = join(dir, 'state.sqlite');
    const N = 5_000;
    // The engine outlives the service: its URL, part of the job's settings, stays the same. It answers
    // the first HOLD resets, then holds its answers until the test lets them go: however fast the job
    // runs, the first run cannot take more than HOLD and its in-flight ceiling before the stop lands.
    const HOLD = 1_000;
    const engine = startCli(
      ['emulator', '--port', '0', '--sessions', String(N), '--hold-after-sends', String(HOLD)],
      {},
    );
    t.after(() => engine.child.kill('SIGKILL'));
    await waitForOutput(engine, (out) => out.includes('\n'));
    const { wsUrl, httpUrl } = JSON.parse(engine.stdout().split('\n')[0]!) as {
      wsUrl: string;
      httpUrl: string;
    };
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        tenants: { demo: { transport: 'runtime-ws', url: wsUrl, bot: 'demo-bot', tokenEnv: 'DEMO_TOKEN' } },
      }),
    );
    const start = async (): Promise<{ run: ReturnType<typeof startCli>; url: string }> => {
      const run = startCli(['serve', '--config', config, '--port', '0', '--state', state], {
        DEMO_TOKEN: 'dev-token',
      });
      t.after(() => run.child.kill('SIGKILL'));
      await waitForOutput(run, (out) => out.includes('\n'));
      return { run, url: (JSON.parse(run.stdout().split('\n')[0]!) as { url: string }).url };
    };
    const first = await start();
    const made = await runCli(['keys', 'create', '--scope', 'jobs:read,jobs:write', '--state', state], {});
    const { key } = JSON.parse(made.stdout) as { key: string };
    const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const sessions = Array.from({ length: N }, (_, i) => `session-${i + 1}`);
    const create = (url: string): Promise<Response> =>
      fetch(`${url}/v1/jobs`, {
        method: 'POST',
        headers: { ...auth, 'idempotency-key': 'resume-1' },
        body: JSON.stringify({ tenant: 'demo', sessions }),
      });
    const res = await create(first.url);
    const { id } = (await res.json()) as { id: string };
    // Follow until some sessions are done, then stop the service.
    const stream = (await fetch(`${first.url}/v1/jobs/${id}/events`, { headers: auth })).body!;
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    await withDeadline(
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) throw new Error('the stream ended before any progress');
          seen += value;
          const counts = [...seen.matchAll(/"done":(\d+)/g)].map((m) => Number(m[1]));
          if (counts.some((n) => n >= 200)) return;
        }
      })(),
      60_000,
      'progress',
    );
    first.run.child.kill('SIGTERM');
    // The service took the stop (its jobs take no new session): the engine lets the answers it held go,
    // and the sessions in flight finish.
    await waitForStderr(first.run, (err) => err.includes('stopping: in-flight sessions finish'), 60_000);
    // An impatient second signal changes nothing: the stop goes on, and says so.
    first.run.child.kill('SIGTERM');
    await waitForStderr(first.run, (err) => err.includes('stopping already'), 60_000);
    const released = await fetch(`${httpUrl}/emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ holdAfterSends: 0 }),
    });
    assert.equal(released.status, 200);
    const exit = await withDeadline(first.run.done, 60_000, 'serve to stop');
    assert.equal(exit.code, 0, exit.stderr);
    assert.ok(!exit.stderr.includes('dev-token'), 'the engine token never appears in a log line');
    // The stop landed in the middle: the engine had reset some sessions, not all.
    const stats = (await (await fetch(`${httpUrl}/emulator/stats`)).json()) as {
      resetsPerSession: Record<string, number>;
    };
    const resetBefore = Object.values(stats.resetsPerSession).reduce((a, b) => a + b, 0);
    assert.ok(resetBefore >= 200 && resetBefore < N, `the first run reset ${resetBefore} of ${N}`);

    const second = await start();
    // The Idempotency-Key outlives the restart: the same request names the same job.
    const again = await create(second.url);
    assert.equal(again.status, 201);
    assert.equal(((await again.json()) as { id: string }).id, id);
    const events = await withDeadline(
      (await fetch(`${second.url}/v1/jobs/${id}/events`, { headers: auth })).text(),
      120_000,
      'the resumed job to finish',
    );
    const last = JSON.parse(events.trim().split('\n').pop()!.slice(6)) as {
      state: string;
      counts: { total: number; reset: number; skipped: number; failed: number };
    };
    assert.equal(last.state, 'succeeded', JSON.stringify(last));
    assert.equal(last.counts.total, N);
    // The counts are the job's, over both runs: each session reset once (the outcomes below say which run).
    assert.equal(last.counts.reset, N);
    assert.equal(last.counts.skipped, 0);
    const lines = (
      await (await fetch(`${second.url}/v1/jobs/${id}/outcomes?outcome=reset`, { headers: auth })).text()
    )
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { sessionId: string }).sessionId);
    assert.equal(lines.length, N, 'each session reset once over both runs');
    assert.equal(new Set(lines).size, N);
    second.run.child.kill('SIGTERM');
    assert.equal((await withDeadline(second.run.done, 60_000, 'serve to stop')).code, 0);
  });
});

describe('serve: a stop while it starts', () => {
  it('a SIGTERM before it listens (its job thread may run chunks already) stops it as one later does: exit 0', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-early-stop-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const server = startCli(
      ['serve', '--emulator', '--sessions', '10', '--port', '0', '--state', join(dir, 'state.sqlite')],
      {},
    );
    t.after(() => server.child.kill('SIGKILL'));
    await waitForStderr(server, (err) => err.includes('emulator listening'), 30_000);
    server.child.kill('SIGTERM');
    const exit = await withDeadline(server.done, 30_000, 'serve to stop');
    assert.equal(exit.code, 0, exit.stderr);
    assert.match(exit.stderr, /stopping: in-flight sessions finish/);
  });
});

describe('serve: refusals at start', () => {
  it('refuses to start without --config or --emulator, with a coded error', async () => {
    const result = await runCli(['serve'], {});
    assert.equal(result.code, 2);
    assert.match(result.stderr, /CR_ERR_OPT_MISSING/);
  });

  it('refuses a config file that is not JSON, or is missing, with a coded error and nothing started', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-bad-config-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const garbled = join(dir, 'garbled.json');
    writeFileSync(garbled, '{"tenants": {');
    for (const config of [garbled, join(dir, 'missing.json')]) {
      const result = await runCli(
        ['serve', '--config', config, '--port', '0', '--state', join(dir, 's.sqlite')],
        {},
      );
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /CR_ERR_API_CONFIG: --config .+: cannot be read as JSON/);
      assert.equal(result.stdout, '', 'nothing listened');
    }
  });
});

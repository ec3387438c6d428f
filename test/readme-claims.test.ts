/**
 * What the README and docs/ promise and no other test showed: the `--rate` ceiling, a second SIGINT and
 * SIGTERM, exit 3 for credentials that lack a scope, a 401 after an OAuth2 refresh, CSV formula
 * neutralisation in `audit export`, and `npm start` exiting 0.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { OAuth2TokenProvider } from '../src/transports/auth/oauth2.js';
import { CognigyRestClient } from '../src/transports/cognigy-rest/client.js';
import { CognigyResetError } from '../src/errors.js';
import { parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { scriptedApi } from './helpers/http.js';
import { withDeadline } from './helpers/ws.js';

let dir: string;
let emu: Emulator;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-claims-'));
  emu = await startEmulator({
    sessions: 200,
    tokens: [{ token: 'dev-token' }, { token: 'runtime-only', scopes: ['bot:runtime:execute'] }],
  });
  for (let k = 1; k <= 8; k++) emu.store.create({ sessionId: `busy-${k}`, stuck: true });
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  COGNIGY_WS_URL: emu.wsUrl,
  COGNIGY_TENANT_ID: 'tenant-1',
  COGNIGY_BOT_ID: 'bot-1',
  COGNIGY_API_TOKEN: 'dev-token',
  COGNIGY_RESET_STATE: join(dir, 'state.sqlite'),
  ...extra,
});

const range = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `session-${i + from}`);

describe('--rate is a ceiling on SEND frames', () => {
  it('never sends more than the rate allows in any window (a bucket of one second)', async (t) => {
    const sends: number[] = [];
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: () => 'cognigy-runtime-v1',
    });
    t.after(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    await new Promise((resolve) => wss.once('listening', resolve));
    wss.on('connection', (ws) =>
      ws.on('message', (data) => {
        const frame = JSON.parse((data as Buffer).toString()) as { type: string };
        if (frame.type === 'SEND') sends.push(performance.now());
        ws.send(
          JSON.stringify(
            frame.type === 'SEND' ? { status: 'RESET_COMPLETE' } : { flowState: 'RESET', variables: {} },
          ),
        );
      }),
    );
    const rate = 20;
    // Sends are timed where they arrive: a stall of this process bunches them up. The longest stall seen
    // while the run lasts widens each window by as much.
    const stalls = monitorEventLoopDelay({ resolution: 10 });
    stalls.enable();
    const result = await runCli(
      ['reset', ...range(70), '--rate', String(rate), '--concurrency', '16', '--json', '--no-audit'],
      env({ COGNIGY_WS_URL: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws/v1` }),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sends.length, 70);
    stalls.disable();
    const stall = stalls.max / 1e9;
    // A bucket of `rate` tokens that refills at `rate` a second: a window of w seconds holds at most
    // rate + rate·w sends (one more for timer rounding).
    for (let i = 0; i < sends.length; i++) {
      for (let j = i + 1; j < sends.length; j++) {
        const w = (sends[j]! - sends[i]!) / 1000 + stall;
        const allowed = rate + rate * w + 1;
        assert.ok(
          j - i + 1 <= allowed,
          `${j - i + 1} SEND frames in ${w.toFixed(3)} s (a stall of ${stall.toFixed(3)} s included) at --rate ${rate}`,
        );
      }
    }
  });
});

describe('signals', () => {
  it('a second SIGINT aborts the resets in flight: exit 130, each reported aborted, the summary printed', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `busy-${i + 1}`);
    const run = startCli(['reset', ...ids, '--json', '--verify-timeout', '600', '--no-audit'], env());
    // Every stuck flow is polled until --verify-timeout: all eight are in flight once the engine saw them.
    await withDeadline(
      (async () => {
        while (ids.some((id) => emu.store.get(id)!.flowState !== 'ACTIVE' || emu.store.get(id)!.resets < 1))
          await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      30_000,
      'the eight resets to be applied',
    );
    run.child.kill('SIGINT');
    await withDeadline(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (run.stderr().includes('Ctrl-C again')) resolve();
        };
        run.child.stderr!.on('data', check);
        check();
      }),
      10_000,
      'the first SIGINT to be taken',
    );
    run.child.kill('SIGINT');
    const result = await withDeadline(run.done, 15_000, 'the run to end after a second SIGINT');
    assert.equal(result.code, 130, result.stderr);
    const { sessions, summary } = parseJsonLines(result.stdout);
    assert.equal(sessions.length, 8);
    for (const s of sessions) assert.equal(s.error?.code, 'CR_ERR_RESET_ABORTED', s.sessionId);
    assert.equal(summary!.interrupted, true);
  });

  it('SIGTERM stops like a first SIGINT: resets in flight finish, exit 130, the summary printed', async () => {
    const run = startCli(['reset', ...range(100, 101), '--rate', '25', '--json', '--no-audit'], env());
    await waitForOutput(run, (out) => out.split('\n').length > 20, 30_000);
    run.child.kill('SIGTERM');
    const result = await withDeadline(run.done, 15_000, 'the run to end after SIGTERM');
    assert.equal(result.code, 130, result.stderr);
    const { sessions, summary } = parseJsonLines(result.stdout);
    assert.ok(sessions.length > 20 && sessions.length < 100, `${sessions.length} sessions reported`);
    assert.ok(
      sessions.every((s) => s.outcome === 'reset' && s.verified),
      'a reset in flight did not finish',
    );
    assert.equal(summary!.total, sessions.length);
    assert.equal(summary!.interrupted, true);
  });
});

describe('credentials that lack a scope', () => {
  it('exit 3 when the token lacks session:manage (the engine closes 1008), resetting nothing', async () => {
    const result = await runCli(
      ['reset', 'session-150', 'session-151', '--json'],
      env({ COGNIGY_API_TOKEN: 'runtime-only' }),
    );
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /CR_ERR_AUTH_FORBIDDEN|session:manage/);
    assert.equal(emu.store.get('session-150')!.flowState, 'ACTIVE');
    assert.equal(emu.store.get('session-151')!.flowState, 'ACTIVE');
    assert.doesNotMatch(result.stdout + result.stderr, /runtime-only/);
  });
});

describe('OAuth2: one refresh after a 401, then the 401 is final', () => {
  it('a REST call refused again after its refresh fails with the auth code, sending twice, refreshing once', async (t) => {
    const api = await scriptedApi();
    t.after(() => api.close());
    const refused = { status: 401, problem: { status: 401, code: 401, traceId: 't-401', detail: 'no' } };
    api.script = [refused, refused, refused];
    const tokens = new OAuth2TokenProvider({
      tokenUrl: `${emu.httpUrl}/auth/oauth2/token`,
      clientId: 'dev-client',
      clientSecret: 'dev-secret',
      initialToken: 'stale',
    });
    const c = new CognigyRestClient({
      apiUrl: api.url,
      tokens,
      ratePerSec: 0,
      retry: { ...DEFAULT_RETRY_POLICY, baseDelayMs: 1 },
    });
    const err = await c.resetState({ sessionId: 's', userId: 'u' }).then(
      () => assert.fail('a second 401 was taken as success'),
      (e: unknown) => e as CognigyResetError,
    );
    assert.ok(err instanceof CognigyResetError);
    assert.match(err.code, /^CR_ERR_AUTH_/);
    assert.equal(err.status, 401);
    assert.equal(api.arrivals.length, 2, 'one request, one after the refresh, and no more');
    assert.equal(tokens.requests, 1);
  });
});

describe('audit export --format csv', () => {
  it('neutralises cells a spreadsheet would run as a formula (= + - @), and quotes what needs quoting', async () => {
    const state = join(dir, 'csv.sqlite');
    const reason = '=HYPERLINK("http://127.0.0.1/x","click"), really';
    const reset = await runCli(['reset', 'session-190', '--reason', reason, '--state', state], env());
    assert.equal(reset.code, 0, reset.stderr);
    const exported = await runCli(['audit', 'export', '--state', state, '--format', 'csv'], env());
    assert.equal(exported.code, 0, exported.stderr);
    assert.ok(
      exported.stdout.includes(`"'=HYPERLINK(""http://127.0.0.1/x"",""click""), really"`),
      `the reason cell was not neutralised and quoted:\n${exported.stdout}`,
    );
    for (const line of exported.stdout.split('\n').slice(1)) {
      for (const cell of line.split(','))
        assert.doesNotMatch(cell, /^"?[=+@]/, `a live formula cell: ${cell}`);
    }
  });
});

describe('npm start', () => {
  it('runs the demo end to end and exits 0', async () => {
    const demo = fileURLToPath(new URL('../src/demo/main.js', import.meta.url));
    const child = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await withDeadline(
      new Promise<number | null>((resolve) => child.once('close', resolve)),
      90_000,
      'the demo',
    ).catch((err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /demo: as expected/);
  });
});

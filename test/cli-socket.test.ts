import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { createResetter } from '../src/reset/resetter.js';
import { CHANNELS } from '../src/reset/events.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { CognigySocketTransport } from '../src/transports/cognigy-socket/transport.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { withFaults } from './helpers/faults.js';
import { metricTotal, parseMetrics } from './helpers/metrics.js';

const URL_TOKEN = 'url-token-RECOGNISABLE-a1b2';
let dir: string;
let emu: Emulator;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-socket-'));
  emu = await startEmulator({
    sessions: 200,
    urlToken: URL_TOKEN,
    disabledUrlTokens: ['url-token-DISABLED'],
  });
  emu.store.create({ sessionId: 'breaks', userId: 'someone', engineError: true });
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

function rows(name: string, ks: (number | string)[]): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    [
      'sessionId,userId',
      ...ks.map((k) => (typeof k === 'number' ? `session-${k},user-${k}` : `${k},someone`)),
    ].join('\n') + '\n',
  );
  return path;
}

const socket = (...args: string[]): string[] => [
  'reset',
  '--transport',
  'cognigy-socket',
  '--endpoint-url',
  emu.httpUrl,
  '--json',
  ...args,
];
const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  COGNIGY_URL_TOKEN: URL_TOKEN,
  COGNIGY_RESET_STATE: join(dir, 'state.sqlite'),
  ...extra,
});

describe('reset --transport cognigy-socket (CLI against the emulator)', () => {
  it('restarts each Flow through processInput/resetFlow, says it cleared the flow position only, and audits it', async () => {
    const state = join(dir, 'ok.sqlite');
    const result = await runCli(socket('--from-file', rows('ok.csv', [1, 2, 3]), '--state', state), env());
    assert.equal(result.code, 0, result.stderr);
    const { sessions } = parseJsonLines(result.stdout);
    assert.equal(sessions.length, 3);
    for (const s of sessions) {
      assert.deepEqual([s.outcome, s.verified, s.attempts, s.error], ['reset', false, 1, null]);
      assert.deepEqual(s.cleared, ['flow']);
      assert.deepEqual(s.notCleared, ['dialog', 'engine', 'variables', 'history', 'nlu']);
      assert.deepEqual(s.notVerified, ['flow']);
    }
    assert.equal(emu.store.get('session-1')!.flowState, 'RESET');
    assert.notDeepEqual(
      emu.store.get('session-1')!.variables,
      {},
      'the socket reset does not touch variables',
    );
    const records = (await runCli(['audit', 'export', '--state', state], {})).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((r) => [r.transport, r.cleared]),
      [
        ['cognigy-socket', ['flow']],
        ['cognigy-socket', ['flow']],
        ['cognigy-socket', ['flow']],
      ],
    );
    assert.doesNotMatch(
      result.stdout + result.stderr + readFileSync(state).toString('latin1'),
      new RegExp(URL_TOKEN),
    );
  });

  it('sends --first-text and --first-data with the reset, and names the layers it cannot clear', async () => {
    const result = await runCli(
      [
        'reset',
        '--transport',
        'cognigy-socket',
        '--endpoint-url',
        // The endpoint URL as Cognigy shows it, ending in the URLToken: never printed.
        `${emu.httpUrl}/${URL_TOKEN}`,
        '--from-file',
        rows('first.csv', [50]),
        '--first-text',
        'start over',
        '--first-data',
        '{"reason":"deploy-42"}',
        '--dry-run',
      ],
      env(),
    );
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout.split('\n')[0]!);
    assert.deepEqual(
      [
        printed.emit,
        printed.payload.resetFlow,
        printed.payload.text,
        printed.payload.data,
        printed.payload.URLToken,
      ],
      ['processInput', true, 'start over', { reason: 'deploy-42' }, '[REDACTED]'],
    );
    assert.equal(printed.endpoint, emu.httpUrl);
    assert.doesNotMatch(result.stdout + result.stderr, new RegExp(URL_TOKEN));
    const human = await runCli(
      socket('--from-file', rows('human.csv', [51])).filter((a) => a !== '--json'),
      env(),
    );
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      /cleared: flow {2}not clearable by this transport: dialog, engine, variables, history, nlu/,
    );
    const bad = await runCli([...socket('--from-file', rows('bad.csv', [52])), '--first-data', '[1]'], env());
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /CR_ERR_OPT_INVALID: Expected --first-data to be a JSON object/);
  });

  it('exits 3 when the endpoint refuses the URLToken, without showing it', async () => {
    const result = await runCli(
      socket('--from-file', rows('auth.csv', [4]), '--log-level', 'debug'),
      env({ COGNIGY_URL_TOKEN: 'url-token-WRONG-77' }),
    );
    assert.equal(result.code, 3);
    assert.match(result.stderr, /CR_ERR_AUTH_UNAUTHORIZED: .*refused the URLToken/);
    assert.doesNotMatch(result.stdout + result.stderr, /url-token-WRONG-77/);
  });

  it('exits 3 when the endpoint is disabled (403)', async () => {
    const result = await runCli(
      socket('--from-file', rows('disabled.csv', [6])),
      env({ COGNIGY_URL_TOKEN: 'url-token-DISABLED' }),
    );
    assert.equal(result.code, 3);
    assert.match(result.stderr, /CR_ERR_AUTH_FORBIDDEN: .*endpoint is disabled/);
  });

  it('recovers from 429 at connect (retryAfterMs honoured) and resets every session', async () => {
    await withFaults(emu, { handshakeRate: 2 }, async () => {
      const metricsFile = join(dir, 'rate.prom');
      const result = await runCli(
        socket(
          '--from-file',
          rows('rate.csv', [40, 41, 42, 43, 44, 45]),
          '--concurrency',
          '6',
          '--metrics-file',
          metricsFile,
        ),
        env(),
      );
      assert.equal(result.code, 0, result.stderr);
      const { sessions } = parseJsonLines(result.stdout);
      assert.ok(sessions.every((s) => s.outcome === 'reset'));
      assert.ok(
        sessions.some((s) => s.attempts > 1),
        'no connection was refused',
      );
      assert.ok((emu.stats().socket['refused 429'] ?? 0) > 0);
      // Each retry went through the pipeline's retry step, which counts it (and pauses the whole job).
      const retries = sessions.reduce((n, s) => n + s.attempts - 1, 0);
      const metrics = parseMetrics(readFileSync(metricsFile, 'utf8'));
      assert.equal(metrics.get('cognigy_reset_retries_total{code="CR_ERR_TRANSPORT_RATE_LIMITED"}'), retries);
      assert.equal(metricTotal(metrics, 'cognigy_reset_retries_total'), retries);
    });
  });

  it('fails an internal error (code 1008) for the input it sent, without sending it again', async () => {
    const before = emu.stats().socket['processInput'] ?? 0;
    const result = await runCli(
      socket('--from-file', rows('breaks.csv', ['breaks']), '--max-attempts', '3'),
      env(),
    );
    assert.equal(result.code, 1);
    const [s] = parseJsonLines(result.stdout).sessions;
    assert.deepEqual([s!.error.code, s!.attempts], ['CR_ERR_TRANSPORT_SOCKET_SERVER', 1]);
    assert.equal((emu.stats().socket['processInput'] ?? 0) - before, 1, 'the input went out once');
  });

  it('reports an unknown sessionId as reset but never verified: a real endpoint starts a new conversation for it', async () => {
    const result = await runCli(socket('--from-file', rows('ghost.csv', ['ghost-1', 5])), env());
    assert.equal(result.code, 0, result.stderr);
    const { sessions } = parseJsonLines(result.stdout);
    for (const s of sessions) {
      assert.deepEqual([s.outcome, s.verified, s.notVerified], ['reset', false, ['flow']]);
    }
    assert.ok((emu.stats().socket['new-session'] ?? 0) >= 1);
    assert.equal(emu.store.get('ghost-1')!.resets, 1, 'the emulator started a conversation for it');
  });

  it('never sends processInput twice: an input whose connection dropped before its answer is unconfirmed', async () => {
    await withFaults(emu, { dropEveryFrames: 2 }, async () => {
      const ks = [10, 11, 12, 13];
      const result = await runCli(
        socket('--from-file', rows('drop.csv', ks), '--concurrency', '1', '--max-attempts', '5'),
        env(),
      );
      assert.equal(result.code, 1);
      const { sessions } = parseJsonLines(result.stdout);
      const unconfirmed = sessions.filter((s) => s.error?.code === 'CR_ERR_RESET_UNCONFIRMED');
      assert.equal(unconfirmed.length, 2, 'every second input was dropped');
      for (const s of unconfirmed) {
        assert.deepEqual([s.outcome, s.verified, s.attempts], ['failed', false, 1]);
        assert.match(s.error.message, /sent .* but its answer never came.*not sent again/);
      }
      assert.equal(sessions.filter((s) => s.outcome === 'reset').length, 2);
      // Each Flow was started once: the dropped inputs had been processed, and none went out again.
      for (const k of ks) assert.equal(emu.store.get(`session-${k}`)!.resets, 1, `session-${k}`);
    });
  });

  it('reports CR_ERR_RESET_UNCONFIRMED, not a retry, when finalPing misses the deadline', async () => {
    await withFaults(emu, { latencyMs: 1500 }, async () => {
      const result = await runCli(
        socket('--from-file', rows('slow.csv', [20]), '--ack-timeout', '0.3', '--max-attempts', '3'),
        env(),
      );
      assert.equal(result.code, 1);
      const [s] = parseJsonLines(result.stdout).sessions;
      assert.deepEqual([s!.error.code, s!.attempts], ['CR_ERR_RESET_UNCONFIRMED', 1]);
      assert.match(s!.error.message, /no finalPing within 300 ms/);
      assert.equal(emu.store.get('session-20')!.resets, 1);
    });
  });
});

describe('the Cognigy Socket transport in the reset pipeline', () => {
  it("retries a 429 at connect through the pipeline's shared pause, which holds every session", async () => {
    await withFaults(emu, { handshakeRate: 2 }, async () => {
      const resetter = createResetter({
        transport: new CognigySocketTransport({ endpointUrl: emu.httpUrl, urlToken: URL_TOKEN }),
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 20 },
      });
      const retried: string[] = [];
      const onRetry = (m: unknown): void => void retried.push((m as { code: string }).code);
      subscribe(CHANNELS.retry.name, onRetry);
      try {
        const targets = [50, 51, 52, 53, 54, 55].map((k, index) => ({
          sessionId: `session-${k}`,
          userId: `user-${k}`,
          index,
        }));
        const summary = await resetter.run(targets, { concurrency: 6 });
        assert.equal(summary.reset, 6);
        assert.ok(retried.length > 0, 'no connection was refused');
        assert.ok(retried.every((code) => code === 'CR_ERR_TRANSPORT_RATE_LIMITED'));
        assert.equal(resetter.pipeline.gate.pauses, retried.length);
      } finally {
        unsubscribe(CHANNELS.retry.name, onRetry);
        await resetter.close();
      }
    });
  });
});

import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { type ScriptedApi, scriptedApi, type Step } from './helpers/http.js';
import { withFaults } from './helpers/faults.js';
import { parseMetrics } from './helpers/metrics.js';

const KEY = 'rest-key-RECOGNISABLE-77c1';
/** A Flow many sessions share, with a default context that is not empty, as most real Flows have. */
const FLOW_A = '9d3e2c1b-aaaa-4bbb-8ccc-000000000001';
const FLOW_A_DEFAULT = { locale: 'en-US', step: 'start' };
let dir: string;
let emu: Emulator;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-rest-'));
  emu = await startEmulator({
    sessions: 500,
    tokens: [
      { token: KEY, apiKey: true },
      { token: 'other-project', projects: ['0123456789abcdef01234567'] },
    ],
  });
  emu.store.setFlowDefault(FLOW_A, FLOW_A_DEFAULT);
  for (let i = 1; i <= 12; i++) {
    emu.store.create({
      sessionId: `flow-a-${i}`,
      userId: `user-a-${i}`,
      flowReferenceId: FLOW_A,
      variables: { ...FLOW_A_DEFAULT, step: 'checkout', cart: [i] },
    });
  }
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

const flowA = (i: number): Record<string, string> => ({
  sessionId: `flow-a-${i}`,
  userId: `user-a-${i}`,
  flowReferenceId: FLOW_A,
  entrypoint: '5f1e2d3c4b5a69788796a5b4',
});

const row = (k: number): Record<string, string> => ({
  sessionId: `session-${k}`,
  userId: `user-${k}`,
  flowReferenceId: `7c0e5a4e-0000-4000-8000-${k.toString(16).padStart(12, '0')}`,
  entrypoint: '5f1e2d3c4b5a69788796a5b4',
});

function csvFile(name: string, rows: Record<string, string>[]): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    [
      'sessionId,userId,flowReferenceId,entrypoint',
      ...rows.map((r) => `${r['sessionId']},${r['userId']},${r['flowReferenceId']},${r['entrypoint']}`),
    ].join('\n') + '\n',
  );
  return path;
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { COGNIGY_API_KEY: KEY, COGNIGY_RESET_STATE: join(dir, 'state.sqlite'), ...extra };
}

const rest = (apiUrl: string, ...args: string[]): string[] => [
  'reset',
  '--transport',
  'cognigy-rest',
  '--api-url',
  apiUrl,
  '--json',
  '--rate',
  '1000',
  ...args,
];

describe('reset --transport cognigy-rest (CLI against the emulator)', () => {
  it("resets context and NLU state, verifies the context against the Flow's default, says what it could not clear, and audits it", async () => {
    const file = csvFile('ok.csv', [flowA(1), flowA(2), flowA(3)]);
    const state = join(dir, 'ok.sqlite');
    const result = await runCli(rest(emu.httpUrl, '--from-file', file, '--state', state), env());
    assert.equal(result.code, 0, result.stderr);
    const { sessions } = parseJsonLines(result.stdout);
    assert.equal(sessions.length, 3);
    for (const s of sessions) {
      assert.deepEqual([s.outcome, s.attempts, s.error], ['reset', 1, null]);
      assert.deepEqual(s.cleared, ['variables', 'nlu']);
      assert.deepEqual(s.notCleared, ['flow', 'dialog', 'engine', 'history']);
    }
    // The first reset of the Flow in the run defines its default; the others are checked against it.
    assert.deepEqual(sessions.map((s) => [s.verified, s.notVerified]).sort(), [
      [false, ['variables', 'nlu']],
      [true, ['nlu']],
      [true, ['nlu']],
    ]);
    assert.deepEqual(emu.store.get('flow-a-1')!.variables, FLOW_A_DEFAULT);
    assert.equal(emu.store.get('flow-a-1')!.nluContext, null);
    assert.equal(emu.store.get('flow-a-1')!.flowState, 'ACTIVE');
    const exported = await runCli(['audit', 'export', '--state', state], {});
    const records = exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((r) => [r.transport, r.cleared, r.notCleared]),
      Array.from({ length: 3 }, () => [
        'cognigy-rest',
        ['variables', 'nlu'],
        ['flow', 'dialog', 'engine', 'history'],
      ]),
    );
    assert.ok(records.every((r) => /^[0-9a-f]{64}$/.test(r.directiveHash)));
    assert.doesNotMatch(
      result.stdout + result.stderr + readFileSync(state).toString('latin1'),
      new RegExp(KEY),
    );
  });

  it('with --default-context-keys, verifies every reset by the keys its context holds, the first of a Flow too', async () => {
    const file = csvFile('keys.csv', [row(14), row(15)]);
    const result = await runCli(
      rest(emu.httpUrl, '--from-file', file, '--keep-nlu', '--default-context-keys', 'locale, step,retries'),
      env(),
    );
    assert.equal(result.code, 0, result.stderr);
    const { sessions } = parseJsonLines(result.stdout);
    assert.deepEqual(
      sessions.map((s) => [s.outcome, s.verified, s.notVerified]),
      [
        ['reset', true, []],
        ['reset', true, []],
      ],
    );
    const tooFew = await runCli(
      rest(emu.httpUrl, '--from-file', csvFile('few.csv', [flowA(10)]), '--default-context-keys', 'locale'),
      env(),
    );
    assert.equal(tooFew.code, 1);
    const [s] = parseJsonLines(tooFew.stdout).sessions;
    assert.equal(s!.error.code, 'CR_ERR_RESET_VERIFY_VARIABLES');
    assert.match(s!.error.message, /beyond the Flow's default: step$/);
  });

  it('reads JSON Lines rows, accepting the entryPoint spelling', async () => {
    const path = join(dir, 'rows.jsonl');
    const r = row(3);
    writeFileSync(
      path,
      `${JSON.stringify({ sessionId: r['sessionId'], userId: r['userId'], flowReferenceId: r['flowReferenceId'], entryPoint: r['entrypoint'] })}\n`,
    );
    const result = await runCli(rest(emu.httpUrl, '--from-file', path), env());
    assert.equal(result.code, 0, result.stderr);
  });

  it('refuses rows that lack what the transport needs (exit 2), before anything is sent', async () => {
    const path = join(dir, 'plain.txt');
    writeFileSync(path, 'session-4\n');
    const before = JSON.stringify(emu.stats().rest);
    const result = await runCli(rest(emu.httpUrl, '--from-file', path), env());
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /CR_ERR_OPT_MISSING: .*plain\.txt line 1: session "session-4" lacks userId, flowReferenceId, entrypoint/,
    );
    assert.equal(JSON.stringify(emu.stats().rest), before);
  });

  it('exits 1 with CR_ERR_RESET_SESSION_NOT_FOUND (404, Cognigy code 1002) for an unknown session', async () => {
    const result = await runCli(
      rest(emu.httpUrl, '--from-file', csvFile('ghost.csv', [{ ...row(5), sessionId: 'ghost' }])),
      env(),
    );
    assert.equal(result.code, 1);
    const [s] = parseJsonLines(result.stdout).sessions;
    assert.equal(s!.error.code, 'CR_ERR_RESET_SESSION_NOT_FOUND');
    assert.match(s!.error.message, /answered 404 \(Cognigy code 1002\).*traceId trace-/);
  });

  it('exits 3 on a 401 (unknown key) and on a 403, without showing the key', async () => {
    const file = csvFile('auth.csv', [row(6), row(7)]);
    const r401 = await runCli(
      rest(emu.httpUrl, '--from-file', file),
      env({ COGNIGY_API_KEY: 'key-UNKNOWN-9911' }),
    );
    assert.equal(r401.code, 3);
    assert.match(r401.stderr, /CR_ERR_AUTH_UNAUTHORIZED/);
    assert.doesNotMatch(r401.stdout + r401.stderr, /key-UNKNOWN-9911/);
    // A 403 comes from the user's roles: here, a project the key's user may not manage.
    const r403 = await runCli(
      rest(emu.httpUrl, '--from-file', file),
      env({ COGNIGY_API_KEY: 'other-project' }),
    );
    assert.equal(r403.code, 3);
    assert.match(r403.stderr, /CR_ERR_AUTH_FORBIDDEN/);
  });

  it('authenticates with an OAuth2 bearer token and never shows the issued token', async () => {
    const file = csvFile('oauth.csv', [row(30)]);
    const result = await runCli(rest(emu.httpUrl, '--from-file', file, '--log-level', 'trace'), {
      COGNIGY_RESET_STATE: join(dir, 'oauth.sqlite'),
      COGNIGY_OAUTH_TOKEN_URL: `${emu.httpUrl}/auth/oauth2/token`,
      COGNIGY_OAUTH_CLIENT_ID: 'dev-client',
      COGNIGY_OAUTH_CLIENT_SECRET: 'dev-secret',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.ok((emu.stats().oauth['issued'] ?? 0) >= 1);
    // Issued tokens start emu_: none may appear anywhere.
    assert.doesNotMatch(
      result.stdout + result.stderr + readFileSync(join(dir, 'oauth.sqlite')).toString('latin1'),
      /emu_/,
    );
    assert.doesNotMatch(result.stdout + result.stderr, /dev-secret/);
  });

  it('recovers from 429 with Retry-After and verifies every session', async () => {
    await withFaults(emu, { restRate: 4 }, async () => {
      const file = csvFile('rate.csv', [4, 5, 6, 7, 8, 9].map(flowA));
      const metricsFile = join(dir, 'rate.prom');
      const result = await runCli(
        rest(emu.httpUrl, '--from-file', file, '--concurrency', '6', '--metrics-file', metricsFile),
        env(),
      );
      assert.equal(result.code, 0, result.stderr);
      const { sessions, summary } = parseJsonLines(result.stdout);
      assert.equal(summary!.reset, 6);
      assert.equal(summary!.verified, 5, "all but the Flow's first reset, which defines its default");
      assert.ok(
        sessions.some((s) => s.attempts > 1),
        'no session needed a retry',
      );
      assert.ok(Object.keys(emu.stats().rest).some((k) => k.endsWith(' 429')));
      // Each retry went through the pipeline's retry step, which counts it (and pauses the whole job).
      const retries = sessions.reduce((n, s) => n + s.attempts - 1, 0);
      const metrics = parseMetrics(readFileSync(metricsFile, 'utf8'));
      assert.equal(
        metrics.get('cognigy_reset_retries_total{code="CR_ERR_TRANSPORT_REST_RATE_LIMITED"}'),
        retries,
      );
    });
  });
});

describe('reset --transport cognigy-rest against a failing API', () => {
  const FIVE_HUNDRED: Step = { status: 500, problem: { status: 500, code: 1008, traceId: 't-9' } };
  let api: ScriptedApi;
  before(async () => {
    api = await scriptedApi();
  });
  after(() => api.close());

  for (const [what, steps] of [
    ['a 5xx', [FIVE_HUNDRED]],
    ['a timeout', ['hang']],
    ['a dropped socket', ['drop']],
  ] as [string, Step[]][]) {
    it(`retries after ${what} and resets the session`, async () => {
      api.script = [...steps, 'ok', 'ok'];
      const result = await runCli(
        rest(
          api.url,
          '--from-file',
          csvFile(`fail-${what.replace(/\W+/g, '-')}.csv`, [row(20)]),
          '--ack-timeout',
          '0.3',
        ),
        env(),
      );
      assert.equal(result.code, 0, result.stderr);
      const [s] = parseJsonLines(result.stdout).sessions;
      assert.deepEqual([s!.outcome, s!.attempts], ['reset', 2]);
    });
  }

  it('fails with CR_ERR_TRANSPORT_REST_SERVER when 5xx persists, keeping the traceId', async () => {
    api.script = [FIVE_HUNDRED, FIVE_HUNDRED];
    const result = await runCli(
      rest(api.url, '--from-file', csvFile('fail-hard.csv', [row(21)]), '--max-attempts', '2'),
      env(),
    );
    assert.equal(result.code, 1);
    const [s] = parseJsonLines(result.stdout).sessions;
    assert.equal(s!.error.code, 'CR_ERR_TRANSPORT_REST_SERVER');
    assert.match(s!.error.message, /traceId t-9/);
  });
});

/**
 * Guards against regressions that the rest of the suite let through: each test here was written
 * against a one-line mutation of the code that no other test caught (docs/benchmarks.md lists the
 * mutation-testing run).
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { createResetter } from '../src/reset/resetter.js';
import type { PlanOptions } from '../src/model/plan.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { CognigyRestClient } from '../src/transports/cognigy-rest/client.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { type ScriptedApi, scriptedApi, type Step } from './helpers/http.js';

const KEY = 'guard-key-RECOGNISABLE-51f0';
const TOO_MANY = (retryAfterSec: number): Step => ({
  status: 429,
  problem: { status: 429, code: 429, traceId: 't-429', detail: 'slow down' },
  retryAfterSec,
});

describe('REST: Retry-After is a wait, not a hint', () => {
  let api: ScriptedApi;
  let dir: string;
  before(async () => {
    api = await scriptedApi();
    dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-guards-'));
  });
  after(() => {
    api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the REST client sends nothing again before the Retry-After of a 429 has passed', async () => {
    api.script = [TOO_MANY(1), 'ok'];
    api.arrivals.length = 0;
    // A base delay of 1 ms: only Retry-After can explain a wait of a second.
    const c = new CognigyRestClient({
      apiUrl: api.url,
      apiKey: KEY,
      ratePerSec: 0,
      retry: { ...DEFAULT_RETRY_POLICY, baseDelayMs: 1 },
    });
    await c.resetState({ sessionId: 's', userId: 'u' });
    assert.equal(api.arrivals.length, 2);
    const waited = api.arrivals[1]! - api.arrivals[0]!;
    assert.ok(waited >= 950, `retried ${waited} ms after a 429 that asked for 1 s`);
  });

  it('reset --transport cognigy-rest waits out Retry-After before the next request, and still resets', async () => {
    api.script = [TOO_MANY(2), 'ok', 'ok'];
    api.arrivals.length = 0;
    const rows = join(dir, 'rows.csv');
    writeFileSync(
      rows,
      'sessionId,userId,flowReferenceId,entrypoint\n' +
        'session-1,user-1,7c0e5a4e-0000-4000-8000-000000000001,5f1e2d3c4b5a69788796a5b4\n',
    );
    const result = await runCli(
      [
        'reset',
        '--transport',
        'cognigy-rest',
        '--api-url',
        api.url,
        '--from-file',
        rows,
        '--rate',
        '1000',
      ].concat(['--json', '--state', join(dir, 'rest.sqlite')]),
      { COGNIGY_API_KEY: KEY },
    );
    assert.equal(result.code, 0, result.stderr);
    const [s] = parseJsonLines(result.stdout).sessions;
    assert.deepEqual([s!.outcome, s!.attempts], ['reset', 2]);
    const waited = api.arrivals[1]! - api.arrivals[0]!;
    assert.ok(waited >= 1950, `the second request came ${waited} ms after a 429 that asked for 2 s`);
  });
});

/** An engine that answers the seed's bare shapes: every SEND applied, every QUERY with `state`. */
async function engineReporting(state: Record<string, unknown>) {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: () => 'cognigy-runtime-v1',
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const frame = JSON.parse((data as Buffer).toString()) as { type: string };
      ws.send(JSON.stringify(frame.type === 'SEND' ? { status: 'RESET_COMPLETE' } : state));
    });
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

describe('verification rejects what a reset left behind', () => {
  const CLEAN = { flowState: 'RESET', variables: {} };
  const cases: [string, Record<string, unknown>, string | null, PlanOptions?][] = [
    ['a variable left', { ...CLEAN, variables: { orderId: 'A-1' } }, 'CR_ERR_RESET_VERIFY_VARIABLES'],
    ['history left', { ...CLEAN, historyLength: 3 }, 'CR_ERR_RESET_VERIFY_HISTORY'],
    ['NLU context left', { ...CLEAN, nluContext: { intent: 'refund' } }, 'CR_ERR_RESET_VERIFY_NLU'],
    ['a warm dialog state', { ...CLEAN, dialogState: 'WARM' }, 'CR_ERR_RESET_VERIFY_STATE'],
    ['a running engine state', { ...CLEAN, engineState: 'RUNNING' }, 'CR_ERR_RESET_VERIFY_STATE'],
    ['a flow in an unknown state', { ...CLEAN, flowState: 'PAUSED' }, 'CR_ERR_RESET_VERIFY_STATE'],
    // What the user asked to keep may stay, and layers the engine does not report are not invented.
    ['kept history', { ...CLEAN, historyLength: 3 }, null, { keepHistory: true }],
    ['kept NLU context', { ...CLEAN, nluContext: { intent: 'refund' } }, null, { keepNlu: true }],
    ['kept variables', { ...CLEAN, variables: { orderId: 'A-1' } }, null, { keepVariables: true }],
    [
      'cleared layers reported clear',
      { ...CLEAN, historyLength: 0, nluContext: {}, dialogState: 'COLD' },
      null,
    ],
  ];
  for (const [what, state, code, plan] of cases) {
    it(`${code === null ? 'verifies' : `fails with ${code}`}: ${what}`, async (t) => {
      const engine = await engineReporting(state);
      t.after(() => engine.close());
      const resetter = createResetter({
        url: engine.url,
        tenant: 't',
        botId: 'b',
        token: 'dev-token',
        ...(plan === undefined ? {} : { plan }),
      });
      t.after(() => resetter.close());
      const outcome = await resetter.reset('session-1');
      if (code === null) {
        assert.deepEqual([outcome.outcome, outcome.verified, outcome.error], ['reset', true, null]);
      } else {
        assert.equal(outcome.verified, false);
        assert.equal(outcome.outcome, 'failed');
        assert.equal(outcome.error?.code, code);
      }
    });
  }
});

/**
 * `cognigy-reset sessions list` and `reset` with an inline selector, as real child processes against the
 * emulator: rows equal the ground truth, a stopped list is never silently short, the key never shows,
 * and a selector resets nothing until it is confirmed.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { SEED_ENDPOINTS, SEED_FLOWS } from '../src/emulator/steps.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import {
  expectedEndpoint,
  expectedFlow,
  expectedNode,
  groundTruth,
  type Row,
  type Truth,
  windowThrough,
} from './helpers/ground-truth.js';

const SESSIONS = 200;
const KEY = 'odata-SECRET-5c4b3a29e8';
const API_KEY = 'rest-SECRET-77aa66bb';

const rows = (stdout: string): Row[] =>
  stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Row);
const byId = (list: Row[]): Row[] => [...list].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));

describe('cognigy-reset sessions list', () => {
  let emu: Emulator;
  let truth: Truth[];
  let dir: string;
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    COGNIGY_ODATA_URL: emu.httpUrl,
    COGNIGY_ODATA_KEY: KEY,
    ...extra,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-sessions-'));
    emu = await startEmulator({
      sessions: SESSIONS,
      tokens: [{ token: 'dev-token' }, { token: KEY }, { token: API_KEY }],
    });
    truth = await groundTruth(emu.httpUrl, SESSIONS);
  });
  after(async () => {
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--flow prints one JSON line per distinct session, equal to the ground truth for a window through the Flow', async () => {
    const flow = SEED_FLOWS[1]!.referenceId;
    const { since, until } = windowThrough(truth, flow);
    const result = await runCli(
      ['sessions', 'list', '--flow', flow, '--since', since, '--until', until, '--page-size', '5'],
      env(),
    );
    assert.equal(result.code, 0, result.stderr);
    const expected = expectedFlow(truth, flow, since, until);
    assert.ok(expected.length > 10);
    assert.deepEqual(rows(result.stdout), expected);
    for (const line of result.stdout.trim().split('\n')) {
      assert.deepEqual(Object.keys(JSON.parse(line) as object), [
        'sessionId',
        'userId',
        'flowReferenceId',
        'entrypoint',
        'lastSeen',
      ]);
    }
  });

  it('--node and --endpoint (completed from the REST API) match the ground truth; --format csv; --limit', async () => {
    const node = SEED_FLOWS[2]!.nodes[1]!;
    const nodeRun = await runCli(['sessions', 'list', '--node', node, '--page-size', '4'], env());
    assert.equal(nodeRun.code, 0, nodeRun.stderr);
    assert.deepEqual(rows(nodeRun.stdout), expectedNode(truth, node));

    const endpoint = SEED_ENDPOINTS[1]!;
    const flowRef = SEED_FLOWS.find((f) => f._id === endpoint.flowId)!.referenceId;
    const csv = await runCli(
      ['sessions', 'list', '--endpoint', endpoint.referenceId, '--format', 'csv', '--api-url', emu.httpUrl],
      env({ COGNIGY_API_KEY: API_KEY }),
    );
    assert.equal(csv.code, 0, csv.stderr);
    const [header, ...lines] = csv.stdout.trim().split('\n');
    assert.equal(header, 'sessionId,userId,flowReferenceId,entrypoint,lastSeen');
    const parsed = lines.map((l) => {
      const [sessionId, userId, flowReferenceId, entrypoint, lastSeen] = l.split(',') as [
        string,
        string,
        string,
        string,
        string,
      ];
      return { sessionId, userId, flowReferenceId, entrypoint, lastSeen };
    });
    assert.deepEqual(byId(parsed), expectedEndpoint(truth, endpoint.referenceId, flowRef));

    const limited = await runCli(
      ['sessions', 'list', '--flow', SEED_FLOWS[0]!.referenceId, '--limit', '7'],
      env(),
    );
    assert.equal(limited.code, 0, limited.stderr);
    assert.equal(rows(limited.stdout).length, 7);
  });

  it('retries failing pages; a list that stops exits non-zero and says how many rows it printed; the key never shows', async (t) => {
    t.after(() => emu.setFaults({ odataFailEvery: 0, odataFailFrom: 0 }));
    const flow = SEED_FLOWS[0]!.referenceId;
    emu.setFaults({ odataFailEvery: 4 });
    const retried = await runCli(
      ['sessions', 'list', '--flow', flow, '--page-size', '10', '--log-level', 'debug'],
      env(),
    );
    assert.equal(retried.code, 0, retried.stderr);
    assert.deepEqual(rows(retried.stdout), expectedFlow(truth, flow));
    assert.match(retried.stderr, /retrying/);

    emu.setFaults({ odataFailEvery: 0, odataFailFrom: 4 });
    const stopped = await runCli(
      ['sessions', 'list', '--flow', flow, '--page-size', '10', '--log-level', 'debug'],
      env(),
    );
    assert.equal(stopped.code, 1);
    const printed = rows(stopped.stdout);
    assert.ok(printed.length > 0 && printed.length < expectedFlow(truth, flow).length);
    assert.deepEqual(printed, expectedFlow(truth, flow).slice(0, printed.length));
    assert.match(stopped.stderr, /CR_ERR_SELECT_UNAVAILABLE/);
    assert.match(
      stopped.stderr,
      new RegExp(`stopped after ${printed.length} rows were printed: it is incomplete`),
    );
    for (const out of [retried.stdout, retried.stderr, stopped.stdout, stopped.stderr]) {
      assert.ok(!out.includes(KEY), 'the OData key never shows');
    }
  });

  it('refuses a wrong key with exit 3, naming no key', async () => {
    const result = await runCli(
      ['sessions', 'list', '--flow', 'x'],
      env({ COGNIGY_ODATA_KEY: 'wrong-SECRET-key-1234' }),
    );
    assert.equal(result.code, 3);
    assert.match(result.stderr, /CR_ERR_SELECT_UNAUTHORIZED/);
    assert.ok(!`${result.stdout}${result.stderr}`.includes('wrong-SECRET-key-1234'));
    const usage = await runCli(['sessions', 'list', '--flow', 'a', '--node', 'b'], env());
    assert.equal(usage.code, 2);
  });

  describe('reset with an inline selector', () => {
    const node = SEED_FLOWS[1]!.nodes[2]!;
    const resetEnv = (): Record<string, string> =>
      env({
        COGNIGY_WS_URL: emu.wsUrl,
        COGNIGY_TENANT_ID: 'tenant-1',
        COGNIGY_BOT_ID: 'bot-1',
        COGNIGY_API_TOKEN: 'dev-token',
        COGNIGY_RESET_STATE: join(dir, 'state.sqlite'),
      });
    const resets = async (): Promise<Map<string, number>> => {
      const out = new Map<string, number>();
      for (let k = 1; k <= SESSIONS; k++) {
        const res = await fetch(`${emu.httpUrl}/emulator/sessions/session-${k}`);
        out.set(`session-${k}`, ((await res.json()) as { resets: number }).resets);
      }
      return out;
    };

    it('without --dry-run, --expect or --yes: prints the count, sends nothing, exits 2', async () => {
      const expected = expectedNode(truth, node);
      const sendsBefore = emu.stats().sends;
      const result = await runCli(['reset', '--node', node, '--json'], resetEnv());
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(`CR_ERR_SELECT_UNCONFIRMED: ${expected.length} sessions match node=${node}`),
      );
      const mismatch = await runCli(
        ['reset', '--node', node, '--expect', String(expected.length + 5)],
        resetEnv(),
      );
      assert.equal(mismatch.code, 2);
      assert.match(mismatch.stderr, /CR_ERR_SELECT_COUNT_MISMATCH/);
      const job = await runCli(['reset', '--node', node, '--yes', '--job', 'j1'], resetEnv());
      assert.equal(job.code, 2);
      assert.match(job.stderr, /CR_ERR_OPT_INVALID: a selector cannot drive a resumable --job/);
      const dry = await runCli(['reset', '--node', node, '--dry-run', '--json'], resetEnv());
      assert.equal(dry.code, 0, dry.stderr);
      const { sessions, summary } = parseJsonLines(dry.stdout);
      assert.equal(summary?.['count'], expected.length);
      assert.deepEqual(sessions, expected.slice(0, 10));
      assert.equal(emu.stats().sends, sendsBefore, 'nothing sent');
      assert.ok([...(await resets()).values()].every((n) => n === 0));
      for (const r of [result, mismatch, dry]) assert.ok(!`${r.stdout}${r.stderr}`.includes(KEY));
    });

    it('with --yes: resets exactly the ground-truth sessions, and the audit records carry the selector', async () => {
      const expected = expectedNode(truth, node);
      const result = await runCli(
        ['reset', '--node', node, '--yes', '--json', '--reason', 'bad deploy'],
        resetEnv(),
      );
      assert.equal(result.code, 0, result.stderr);
      const { sessions, summary } = parseJsonLines(result.stdout);
      assert.equal(summary?.['reset'], expected.length);
      assert.deepEqual(sessions.map((s) => s['sessionId']).sort(), expected.map((r) => r.sessionId).sort());
      const chosen = new Set(expected.map((r) => r.sessionId));
      for (const [id, n] of await resets()) assert.equal(n, chosen.has(id) ? 1 : 0, id);
      const audit = await runCli(['audit', 'export', '--state', join(dir, 'state.sqlite')], {});
      assert.equal(audit.code, 0, audit.stderr);
      const records = audit.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { reason: string });
      assert.equal(records.length, expected.length);
      for (const record of records) assert.equal(record.reason, `bad deploy [selector: node=${node}]`);
      assert.ok(!audit.stdout.includes(KEY));
      const verify = await runCli(['audit', 'verify', '--state', join(dir, 'state.sqlite')], {});
      assert.equal(verify.code, 0, verify.stderr);
    });

    it('reset --from-file reads the list as it is', async () => {
      const flow = SEED_FLOWS[2]!.referenceId;
      const list = await runCli(['sessions', 'list', '--flow', flow, '--limit', '5'], env());
      const path = join(dir, 'list.jsonl');
      writeFileSync(path, list.stdout);
      const result = await runCli(['reset', '--from-file', path, '--dry-run', '--json'], resetEnv());
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(
        parseJsonLines(result.stdout).sessions.map((s) => s['sessionId']),
        rows(list.stdout).map((r) => r.sessionId),
      );
    });
  });
});

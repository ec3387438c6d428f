/**
 * Selectors against the emulator's OData door: every selector's rows equal the ground truth that
 * `GET /emulator/sessions/:id` shows, across many pages, through failing pages and "500 past the end".
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { CognigyResetError } from '../src/errors.js';
import {
  checkSelector,
  ODataClient,
  RestLookup,
  selectSessions,
  type Selector,
  type SessionRow,
} from '../src/select/index.js';
import { SEED_ENDPOINTS, SEED_FLOWS } from '../src/emulator/steps.js';
import {
  expectedEndpoint,
  expectedFlow,
  expectedNode,
  groundTruth,
  type Truth,
  windowThrough,
} from './helpers/ground-truth.js';

const SESSIONS = 300;
const KEY = 'odata-key-9f3b2c71';
const FAST_RETRY = { attempts: 4, baseMs: 1, capMs: 5 };

async function collect(
  selector: Selector,
  odata: ODataClient,
  options: { pageSize?: number; rest?: RestLookup; limit?: number } = {},
) {
  const rows: SessionRow[] = [];
  for await (const batch of selectSessions(selector, {
    odata,
    pageSize: options.pageSize ?? 7,
    rest: options.rest,
    limit: options.limit,
  }))
    rows.push(...batch);
  return rows;
}

const sorted = (rows: SessionRow[]): SessionRow[] =>
  [...rows].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));

describe('selectors over the emulator OData door', () => {
  let emu: Emulator;
  let truth: Truth[];
  const client = (retries: Array<number | undefined> = []): ODataClient =>
    new ODataClient({
      url: emu.httpUrl,
      key: KEY,
      retry: FAST_RETRY,
      onRetry: (info) => retries.push(info.status),
    });

  before(async () => {
    emu = await startEmulator({ sessions: SESSIONS, tokens: [{ token: 'dev-token' }, { token: KEY }] });
    truth = await groundTruth(emu.httpUrl, SESSIONS);
  });
  after(() => emu.close());

  it('--flow: the sessions with a step of that Flow inside a window cutting through its steps, over many pages', async () => {
    for (const flow of SEED_FLOWS) {
      const window = windowThrough(truth, flow.referenceId);
      const expected = expectedFlow(truth, flow.referenceId, window.since, window.until);
      assert.ok(expected.length > 20, 'the window holds enough sessions to cross many pages');
      // The bounds are step timestamps: one step sits on `since` (in) and one on `until` (out).
      const odata = client();
      const rows = await collect(checkSelector({ flow: flow.referenceId, ...window }), odata);
      assert.deepEqual(rows, expected, `flow ${flow.name}`);
      assert.ok(odata.requests > expected.length / 7, `paged: ${odata.requests} requests`);
      assert.equal(new Set(rows.map((r) => r.sessionId)).size, rows.length, 'one row per session');
    }
  });

  it("--flow without a window: every session that ever ran it, even with pages smaller than one session's steps", async () => {
    const flow = SEED_FLOWS[1]!.referenceId;
    const expected = expectedFlow(truth, flow);
    assert.deepEqual(await collect(checkSelector({ flow }), client(), { pageSize: 50 }), expected);
    // Some session ran this Flow three times or more: with two records a page, a whole page is one session.
    assert.ok(truth.some((s) => s.executedSteps.filter((x) => x.flowReferenceId === flow).length >= 3));
    assert.deepEqual(await collect(checkSelector({ flow }), client(), { pageSize: 2 }), expected);
  });

  it('--node: the sessions whose last recorded step is that node, in the window', async () => {
    const window = windowThrough(truth, SEED_FLOWS[0]!.referenceId);
    let checked = 0;
    for (const flow of SEED_FLOWS) {
      for (const node of flow.nodes) {
        const expected = expectedNode(truth, node, window.since, window.until);
        checked += expected.length;
        assert.deepEqual(
          await collect(checkSelector({ node, ...window }), client()),
          expected,
          `node ${node}`,
        );
      }
    }
    assert.ok(checked > 20);
  });

  it('--endpoint: the sessions started on it, with Flow and entrypoint read once from the REST API', async () => {
    const rest = new RestLookup({ apiUrl: emu.httpUrl, apiKey: 'dev-token' });
    const window = windowThrough(truth, SEED_FLOWS[0]!.referenceId);
    for (const endpoint of SEED_ENDPOINTS) {
      const flowRef = SEED_FLOWS.find((f) => f._id === endpoint.flowId)!.referenceId;
      const expected = expectedEndpoint(truth, endpoint.referenceId, flowRef, window.since, window.until);
      assert.ok(expected.length > 7);
      const rows = await collect(checkSelector({ endpoint: endpoint.referenceId, ...window }), client(), {
        rest,
      });
      assert.deepEqual(sorted(rows), expected, `endpoint ${endpoint.name}`);
      // Newest first: the order Sessions is paged in.
      assert.deepEqual(
        rows.map((r) => r.lastSeen),
        [...rows.map((r) => r.lastSeen)].sort().reverse(),
      );
    }
  });

  it('--limit caps the rows', async () => {
    const rows = await collect(checkSelector({ flow: SEED_FLOWS[0]!.referenceId }), client(), { limit: 13 });
    assert.equal(rows.length, 13);
  });

  it('retries a failing page and still lists every session', async (t) => {
    emu.setFaults({ odataFailEvery: 3 });
    t.after(() => emu.setFaults({ odataFailEvery: 0 }));
    const flow = SEED_FLOWS[2]!.referenceId;
    const retries: Array<number | undefined> = [];
    assert.deepEqual(await collect(checkSelector({ flow }), client(retries)), expectedFlow(truth, flow));
    assert.ok(retries.length > 3, `retried ${retries.length} times`);
    assert.ok(retries.every((s) => s === 503));
  });

  it('tells "500 past the end" apart from a real failure', async (t) => {
    emu.setFaults({ odataEmpty500: 1 });
    t.after(() => emu.setFaults({ odataEmpty500: 0, odataFailFrom: 0 }));
    const flow = SEED_FLOWS[1]!.referenceId;
    const expected = expectedFlow(truth, flow);
    const steps = truth.flatMap((s) => s.executedSteps).filter((x) => x.flowReferenceId === flow).length;
    // Every page full, the last one too: the next page is past the end, and answers 500.
    const exact = await collect(checkSelector({ flow }), client(), { pageSize: steps });
    assert.deepEqual(exact, expected);
    // An empty window: its very first page answers 500, and it is empty, not failed.
    assert.deepEqual(
      await collect(
        checkSelector({ flow, since: '2000-01-01T00:00:00Z', until: '2000-01-02T00:00:00Z' }),
        client(),
      ),
      [],
    );
    // The same 500 in the middle of the list is a real failure: retried, then reported.
    emu.setFaults({ odataFailFrom: 4 });
    await assert.rejects(collect(checkSelector({ flow }), client(), { pageSize: 10 }), (err: unknown) => {
      assert.ok(err instanceof CognigyResetError);
      assert.equal(err.code, 'CR_ERR_SELECT_UNAVAILABLE');
      assert.equal(err.status, 500);
      return true;
    });
  });

  it('checks the apikey and never shows it in an error', async () => {
    const odata = new ODataClient({ url: emu.httpUrl, key: 'wrong-key-8d1e', retry: FAST_RETRY });
    await assert.rejects(collect(checkSelector({ flow: 'x' }), odata), (err: unknown) => {
      assert.ok(err instanceof CognigyResetError);
      assert.equal(err.code, 'CR_ERR_SELECT_UNAUTHORIZED');
      assert.equal(err.status, 401);
      assert.doesNotMatch(err.message, /wrong-key-8d1e/);
      return true;
    });
    const res = await fetch(`${emu.httpUrl}/v2.4/Sessions?$top=1`);
    assert.equal(res.status, 401);
    // No one listens there: the message says so without the URL, whose query holds the key.
    const gone = new ODataClient({ url: 'http://127.0.0.1:9', key: KEY, retry: { attempts: 1 } });
    await assert.rejects(collect(checkSelector({ flow: 'x' }), gone), (err: unknown) => {
      assert.ok(err instanceof CognigyResetError);
      assert.equal(err.code, 'CR_ERR_SELECT_UNAVAILABLE');
      assert.doesNotMatch(
        `${err.message} ${String((err.cause as Error | undefined)?.message)}`,
        new RegExp(KEY),
      );
      return true;
    });
  });

  it('serves the OData subset: eq ge gt lt le and, $select, $orderby, $top, $skip, $count', async () => {
    const t = truth[0]!.executedSteps[1]!.timestamp;
    const q = async (params: Record<string, string>) => {
      const res = await fetch(
        `${emu.httpUrl}/v2.4/ExecutedSteps?${new URLSearchParams({ ...params, apikey: KEY }).toString()}`,
      );
      assert.equal(res.status, 200);
      return (await res.json()) as { value: Record<string, unknown>[]; '@odata.count'?: number };
    };
    const all = truth.flatMap((s) => s.executedSteps);
    const count = (pred: (ms: number) => boolean) => all.filter((x) => pred(Date.parse(x.timestamp))).length;
    const ms = Date.parse(t);
    for (const [op, pred] of [
      ['eq', (x: number) => x === ms],
      ['ge', (x: number) => x >= ms],
      ['gt', (x: number) => x > ms],
      ['lt', (x: number) => x < ms],
      ['le', (x: number) => x <= ms],
    ] as const) {
      const page = await q({ $filter: `timestamp ${op} ${t}`, $count: 'true', $top: '0' });
      assert.equal(page['@odata.count'], count(pred), op);
    }
    const page = await q({
      $filter: `sessionId eq 'session-1' and timestamp ge ${truth[0]!.executedSteps[0]!.timestamp}`,
      $orderby: 'timestamp asc',
      $select: 'entityReferenceId,timestamp',
      $skip: '1',
      $top: '2',
    });
    assert.deepEqual(
      page.value,
      truth[0]!.executedSteps.slice(1, 3).map((x) => ({ entityReferenceId: x.node, timestamp: x.timestamp })),
    );
    const bad = await fetch(
      `${emu.httpUrl}/v2.4/ExecutedSteps?apikey=${KEY}&$filter=${encodeURIComponent('nope eq 1')}`,
    );
    assert.equal(bad.status, 400);
  });
});

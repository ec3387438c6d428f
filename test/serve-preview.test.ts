/**
 * The service's preview route and key route in process, against the emulator: a preview answers the
 * count, what each reset clears and the first directives, sends nothing and creates no job; it is refused
 * without jobs:read or for a tenant the key is not bound to. `GET /v1/key` says what a key may do. A
 * running job's status carries the flow controller and the last second's latency.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentLatency } from '../src/serve/recent-latency.js';
import { followToEnd, ids, json, startService } from './helpers/service.js';

interface Preview {
  tenant: string;
  bot: string;
  transport: string;
  count: number;
  plan: {
    stateClearMatrix: Record<string, string>;
    contextWipeDirective: Record<string, boolean>;
    cleared: string[];
    kept: string[];
    notClearable: string[];
  };
  directives: { sessionId: string; frame: string }[];
  sent: boolean;
}

async function problem(res: Response, status: number, code: string): Promise<void> {
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, status, JSON.stringify(body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(body['code'], code);
}

describe('serve: POST /v1/jobs/preview', () => {
  it('answers the count, the layers each reset clears and the first directives, and sends nothing', async (t) => {
    const s = await startService(t);
    const reader = await s.key(['jobs:read']);
    const res = await s.call(
      '/v1/jobs/preview?first=3',
      reader,
      json({ tenant: 'demo', sessions: ids(250), plan: { keepHistory: true }, maxDurationSec: 120 }),
    );
    assert.equal(res.status, 200);
    const preview = (await res.json()) as Preview;
    assert.equal(preview.count, 250);
    assert.deepEqual([preview.tenant, preview.bot, preview.transport], ['demo', 'demo-bot', 'runtime-ws']);
    assert.deepEqual(preview.plan.stateClearMatrix, {
      flowState: 'RESET',
      dialogState: 'COLD',
      engineState: 'INITIALIZED',
    });
    assert.deepEqual(preview.plan.contextWipeDirective, {
      clearVariables: true,
      clearHistory: false,
      clearNLUContext: true,
    });
    assert.deepEqual(preview.plan.kept, ['history']);
    assert.deepEqual(preview.plan.cleared, ['flow', 'dialog', 'engine', 'variables', 'nlu']);
    assert.equal(preview.sent, false);
    assert.deepEqual(
      preview.directives.map((d) => d.sessionId),
      ['session-1', 'session-2', 'session-3'],
    );
    for (const { sessionId, frame } of preview.directives) {
      const sent = JSON.parse(frame) as Record<string, unknown>;
      assert.equal(sent['type'], 'SEND');
      assert.equal(sent['sessionId'], sessionId);
      assert.equal(sent['maxDurationSec'], 120);
      assert.deepEqual(sent['stateClearMatrix'], preview.plan.stateClearMatrix);
      assert.doesNotMatch(frame, /dev-token|token/i);
    }
    // Nothing reached the engine, no job was made, no audit record written.
    assert.equal(s.emulator.stats().connectionsTotal, 0);
    assert.equal(s.emulator.stats().sends, 0);
    const list = (await (await s.call('/v1/jobs', reader)).json()) as { jobs: unknown[] };
    assert.deepEqual(list.jobs, []);
    let records = 0;
    for await (const _ of s.store.auditRecords({})) records++;
    assert.equal(records, 0);
  });

  it('previews an upload as a job would read it: its rows counted, the first shown', async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:read', 'jobs:write']);
    const csv = `sessionId,note\n${ids(40)
      .map((id) => `${id},x`)
      .join('\n')}\n`;
    const res = await s.call('/v1/jobs/preview?tenant=demo&first=1', key, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: csv,
    });
    assert.equal(res.status, 200);
    const preview = (await res.json()) as Preview;
    assert.equal(preview.count, 40);
    assert.deepEqual(
      preview.directives.map((d) => d.sessionId),
      ['session-1'],
    );
    const bad = await s.call('/v1/jobs/preview?tenant=demo', key, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'session-1\n session-2\n',
    });
    await problem(bad, 400, 'CR_ERR_OPT_SESSION_ID');
  });

  it("takes an upload's plan flags from its query string: the preview shows them kept, and the job keeps them", async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:read', 'jobs:write']);
    const upload = (path: string): Promise<Response> =>
      s.call(path, key, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: `${ids(5).join('\n')}\n`,
      });
    const res = await upload('/v1/jobs/preview?tenant=demo&first=1&keepHistory=true&keepVariables=true');
    assert.equal(res.status, 200);
    const preview = (await res.json()) as Preview;
    assert.deepEqual([...preview.plan.kept].sort(), ['history', 'variables']);
    assert.deepEqual(preview.plan.cleared, ['flow', 'dialog', 'engine', 'nlu']);
    const session = async (): Promise<{ flowState: string; variables: Record<string, unknown> }> =>
      (await (await fetch(`${s.emulator.httpUrl}/emulator/sessions/session-1`)).json()) as {
        flowState: string;
        variables: Record<string, unknown>;
      };
    const before = await session();
    assert.notDeepEqual(before.variables, {}, 'a seeded session has variables to keep');
    const made = await upload('/v1/jobs?tenant=demo&keepVariables=true');
    assert.equal(made.status, 201, await made.clone().text());
    const last = await followToEnd(s, key, String(((await made.json()) as { id: string }).id));
    assert.equal(last['state'], 'succeeded', JSON.stringify(last));
    const after = await session();
    assert.equal(after.flowState, 'RESET');
    assert.deepEqual(after.variables, before.variables, 'the variables were kept');
    // A flag that is not a boolean is refused like any bad field.
    await problem(await upload('/v1/jobs?tenant=demo&keepNlu=maybe'), 400, 'CR_ERR_OPT_INVALID');
  });

  it('refuses a bad id, an unknown tenant, a missing scope or a tenant the key is not bound to', async (t) => {
    const s = await startService(t);
    const reader = await s.key(['jobs:read']);
    const body = json({ tenant: 'demo', sessions: ids(5) });
    await problem(await s.call('/v1/jobs/preview', undefined, body), 401, 'CR_ERR_API_UNAUTHORIZED');
    // jobs:write alone does not preview: the preview is a read.
    const writer = await s.key(['jobs:write']);
    await problem(await s.call('/v1/jobs/preview', writer, body), 403, 'CR_ERR_API_FORBIDDEN');
    const boundToOther = await s.key(['jobs:read'], ['other']);
    await problem(await s.call('/v1/jobs/preview', boundToOther, body), 403, 'CR_ERR_API_FORBIDDEN');
    const other = await s.call('/v1/jobs/preview', boundToOther, json({ tenant: 'other', sessions: ids(5) }));
    assert.equal(other.status, 200);
    await problem(
      await s.call('/v1/jobs/preview', reader, json({ tenant: 'nowhere', sessions: ids(1) })),
      400,
      'CR_ERR_OPT_INVALID',
    );
    await problem(
      await s.call('/v1/jobs/preview', reader, json({ tenant: 'demo', sessions: ['ok', 'bad\u0000id'] })),
      400,
      'CR_ERR_OPT_SESSION_ID',
    );
    await problem(await s.call('/v1/jobs/preview?first=1000', reader, body), 400, 'CR_ERR_OPT_INVALID');
    // A body that is not UTF-8 is refused whole; an id holding U+FFFD (what an encoder writes for what it
    // could not encode) is refused as the CLI refuses it.
    const bytes = Buffer.concat([
      Buffer.from('{"tenant":"demo","sessions":["s-'),
      Buffer.from([0xff]),
      Buffer.from('1"]}'),
    ]);
    const notUtf8 = { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytes };
    await problem(await s.call('/v1/jobs/preview', reader, notUtf8), 400, 'CR_ERR_CLI_INPUT_ENCODING');
    await problem(
      await s.call('/v1/jobs/preview', reader, json({ tenant: 'demo', sessions: ['s-\uFFFD1'] })),
      400,
      'CR_ERR_OPT_SESSION_ID',
    );
    const openapi = (await (await s.call('/openapi.json', undefined)).json()) as {
      paths: Record<string, unknown>;
    };
    assert.ok('/v1/jobs/preview' in openapi.paths);
    assert.ok('/v1/key' in openapi.paths);
  });
});

describe('serve: GET /v1/key and the live status', () => {
  it("tells a key its scopes, what it lacks and the tenants it may use; never the key's secret", async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:read', 'audit:read'], ['other']);
    const res = await s.call('/v1/key', key);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(!text.includes(key));
    const me = JSON.parse(text) as Record<string, unknown>;
    assert.match(me['id'] as string, /^key_/);
    assert.deepEqual(me['scopes'], ['jobs:read', 'audit:read']);
    assert.deepEqual(me['lacks'], ['jobs:write']);
    assert.deepEqual(me['boundTo'], ['other']);
    assert.deepEqual(me['tenants'], ['other']);
    const unbound = (await (await s.call('/v1/key', await s.key(['jobs:write']))).json()) as {
      tenants: string[];
    };
    assert.deepEqual(unbound.tenants, ['demo', 'other', 'badkey']);
    await problem(await s.call('/v1/key', undefined), 401, 'CR_ERR_API_UNAUTHORIZED');
  });

  it("shows a running job's flow controller, in-flight bound and last second's latency", async (t) => {
    const s = await startService(t, 2, 5000);
    const key = await s.key(['jobs:read', 'jobs:write']);
    const created = (await (
      await s.call('/v1/jobs', key, json({ tenant: 'demo', sessions: ids(5000) }))
    ).json()) as { id: string };
    // A job starts as it is created when a slot is free: it is running now, for a while yet.
    const job = (await (await s.call(`/v1/jobs/${created.id}`, key)).json()) as Record<string, any>;
    assert.equal(job['state'], 'running');
    assert.equal(job['flowControl'].mode, 'adaptive');
    assert.equal(job['flowControl'].inFlightLimit, 16);
    assert.equal(typeof job['flowControl'].rate, 'number');
    assert.equal(typeof job['recent'].sessions, 'number');
    assert.deepEqual(Object.keys(job['recent'].latencyMs), ['p50', 'p95', 'p99']);
  });
});

describe("serve: a job's last second, for the plot", () => {
  it('shows the last complete second: its sessions and percentiles, zeros after a quiet second', () => {
    let now = 0;
    const recent = new RecentLatency(() => now);
    for (let i = 1; i <= 100; i++) recent.record(i);
    // The second is not over: nothing complete to show yet.
    assert.deepEqual(recent.figures(), { sessions: 0, latencyMs: { p50: 0, p95: 0, p99: 0 } });
    now = 1000;
    recent.record(500);
    const first = recent.figures();
    assert.equal(first.sessions, 100);
    assert.ok(Math.abs(first.latencyMs.p50 - 50) <= 1, `p50 ${first.latencyMs.p50}`);
    assert.ok(Math.abs(first.latencyMs.p99 - 99) <= 2, `p99 ${first.latencyMs.p99}`);
    now = 2500;
    assert.equal(recent.figures().sessions, 1);
    // A second with nothing finished shows as zero, not as the last busy one.
    now = 4000;
    assert.deepEqual(recent.figures(), { sessions: 0, latencyMs: { p50: 0, p95: 0, p99: 0 } });
  });
});

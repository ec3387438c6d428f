/**
 * The service's HTTP API in process, against the emulator: keys and scopes, tenant binding, a job followed
 * over SSE to its end, outcomes, idempotency, cancel, uploads, problem+json and the OpenAPI document. The
 * store is a real SQLite file; test/serve.test.ts runs the real command.
 */
import * as assert from 'node:assert/strict';
import { setTimeout } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { followToEnd, ids, json, problem, startService } from './helpers/service.js';
import { parseConfig } from '../src/serve/config.js';
import { withDeadline } from './helpers/ws.js';

describe('serve: the HTTP API', () => {
  it("audits each reset with the key's id as the actor; audit:read streams and verifies the chain", async (t) => {
    const s = await startService(t);
    const writer = await s.key(['jobs:write', 'jobs:read']);
    const [writerRecord] = await s.store.listApiKeys();
    const res = await s.call(
      '/v1/jobs',
      writer,
      json({ tenant: 'demo', sessions: ids(20), reason: 'INC-1' }),
    );
    const { id } = (await res.json()) as { id: string };
    assert.equal((await followToEnd(s, writer, id))['state'], 'succeeded');
    await problem(await s.call('/v1/audit/verify', writer), 403, 'CR_ERR_API_FORBIDDEN');
    const auditor = await s.key(['audit:read']);
    const records = (await (await s.call(`/v1/audit/records?jobId=${id}`, auditor)).text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { actor: string; jobId: string; reason: string; tenant: string });
    assert.equal(records.length, 20);
    for (const record of records) {
      assert.equal(record.actor, `key:${writerRecord!.id}`);
      assert.equal(record.jobId, id);
      assert.equal(record.reason, 'INC-1');
    }
    const verified = (await (await s.call('/v1/audit/verify', auditor)).json()) as {
      ok: boolean;
      records: number;
    };
    assert.deepEqual([verified.ok, verified.records], [true, 20]);
    const bound = await s.key(['audit:read'], ['other']);
    assert.equal(await (await s.call('/v1/audit/records', bound)).text(), '');
    await problem(await s.call('/v1/audit/verify', bound), 403, 'CR_ERR_API_FORBIDDEN');
    await problem(await s.call('/v1/audit/records?tenant=demo', bound), 403, 'CR_ERR_API_FORBIDDEN');
    assert.equal((await s.call('/readyz', undefined)).status, 200);
  });

  it('refuses without a valid key (401) or scope (403), as problem+json with a code', async (t) => {
    const s = await startService(t);
    await problem(await s.call('/v1/jobs', undefined), 401, 'CR_ERR_API_UNAUTHORIZED');
    await problem(await s.call('/v1/jobs', 'crk_not-a-key'), 401, 'CR_ERR_API_UNAUTHORIZED');
    const reader = await s.key(['jobs:read']);
    assert.equal((await s.call('/v1/jobs', reader)).status, 200);
    // Its use is recorded: `keys list` tells a key in use from a stale one.
    await withDeadline(
      (async () => {
        while ((await s.store.listApiKeys())[0]!.lastUsedAt === null) await setTimeout(10);
      })(),
      5000,
      "the key's use to be written",
    );
    await problem(
      await s.call('/v1/jobs', reader, json({ tenant: 'demo', sessions: ['session-1'] })),
      403,
      'CR_ERR_API_FORBIDDEN',
    );
    const [record] = await s.store.listApiKeys();
    await s.store.revokeApiKey(record!.id);
    await problem(await s.call('/v1/jobs', reader), 401, 'CR_ERR_API_UNAUTHORIZED');
    await problem(await s.call('/v1/nope', reader), 401, 'CR_ERR_API_UNAUTHORIZED');
    const writer = await s.key(['jobs:write', 'jobs:read']);
    await problem(await s.call('/v1/jobs/job_missing', writer), 404, 'CR_ERR_API_NOT_FOUND');
    const bad = await problem(
      await s.call('/v1/jobs', writer, json({ tenant: 'demo', sessions: [], x: 1 })),
      400,
      'CR_ERR_OPT_INVALID',
    );
    assert.ok(typeof bad['detail'] === 'string');
    // A JSON body is taken as sent: no value is coerced to the type its field wants.
    for (const wrong of [
      { tenant: ['demo'], sessions: ['session-1'] },
      { tenant: 'demo', sessions: [['session-1']] },
      { tenant: 'demo', sessions: ['session-1'], maxDurationSec: '600' },
      { tenant: 'demo', sessions: ['session-1'], maxDurationSec: null },
      { tenant: 'demo', sessions: ['session-1'], dryRun: 'true' },
    ])
      await problem(await s.call('/v1/jobs', writer, json(wrong)), 400, 'CR_ERR_OPT_INVALID');
    await problem(
      await s.call('/v1/jobs', writer, json({ tenant: 'nowhere', sessions: ['session-1'] })),
      400,
      'CR_ERR_OPT_INVALID',
    );
    // The router's and the HTTP parser's refusals are problems with a code too.
    const looking = await s.key(['jobs:read']);
    await problem(await s.call('/v1/jobs/%FF', looking), 400, 'CR_ERR_OPT_INVALID');
    const long = `/v1/sessions/${'s'.repeat(256)}/reset`;
    await problem(await s.call(long, looking, json({ tenant: 'demo' })), 403, 'CR_ERR_API_FORBIDDEN');
    await problem(
      await s.call('/v1/jobs', looking, { headers: { 'x-padding': 'x'.repeat(20_000) } }),
      431,
      'CR_ERR_API_TOO_LARGE',
    );
    // The router decodes the path: an encoded /v1 is /v1, and is refused alike.
    await problem(await s.call('/%761/jobs', undefined), 401, 'CR_ERR_API_UNAUTHORIZED');
    await problem(await s.call('/%76%31/key', undefined), 401, 'CR_ERR_API_UNAUTHORIZED');
    const reading = await s.key(['jobs:read']);
    await problem(
      await s.call('/%761/jobs', reading, json({ tenant: 'demo', sessions: ['session-1'] })),
      403,
      'CR_ERR_API_FORBIDDEN',
    );
    assert.deepEqual(await s.store.listServiceJobs({ limit: 10 }), []);
    // Nothing needs a key outside /v1.
    assert.equal((await s.call('/healthz', undefined)).status, 200);
    assert.match(await (await s.call('/metrics', undefined)).text(), /cognigy_reset_service_jobs/);
  });

  it('runs a job to succeeded, followed over SSE, with its counts and its outcomes as JSON Lines', async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:write', 'jobs:read']);
    const res = await s.call(
      '/v1/jobs',
      key,
      json({ tenant: 'demo', bot: 'demo-bot', sessions: ids(200), reason: 'test' }),
    );
    const created = (await res.json()) as { id: string; state: string; actor: string };
    assert.equal(res.status, 201);
    assert.match(created.actor, /^key:key_/);
    const last = await followToEnd(s, key, created.id);
    assert.equal(last['state'], 'succeeded');
    assert.deepEqual(last['counts'], { total: 200, reset: 200, verified: 200, failed: 0, skipped: 0 });
    const got = (await (await s.call(`/v1/jobs/${created.id}`, key)).json()) as Record<string, unknown>;
    assert.equal(got['state'], 'succeeded');
    assert.ok((got['latencyMs'] as { p99: number }).p99 > 0);
    const outcomes = await s.call(`/v1/jobs/${created.id}/outcomes`, key);
    assert.match(outcomes.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    const lines = (await outcomes.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 200);
    assert.deepEqual(Object.keys(lines[0]!), [
      'sessionId',
      'outcome',
      'verified',
      'latencyMs',
      'attempts',
      'error',
    ]);
    assert.equal(new Set(lines.map((l) => l['sessionId'])).size, 200);
    assert.equal(await (await s.call(`/v1/jobs/${created.id}/outcomes?outcome=failed`, key)).text(), '');
    // Pages, newest first: `next` names where the next page starts.
    const more = [];
    for (let i = 0; i < 2; i++)
      more.push(
        (
          (await (
            await s.call('/v1/jobs', key, json({ tenant: 'demo', sessions: ids(1), dryRun: true }))
          ).json()) as { id: string }
        ).id,
      );
    const page1 = (await (await s.call('/v1/jobs?limit=2', key)).json()) as {
      jobs: { id: string }[];
      next: string;
    };
    assert.deepEqual(
      page1.jobs.map((j) => j.id),
      [more[1], more[0]],
    );
    const page2 = (await (await s.call(`/v1/jobs?limit=2&after=${page1.next}`, key)).json()) as {
      jobs: { id: string }[];
      next: null;
    };
    assert.deepEqual([page2.jobs.map((j) => j.id), page2.next], [[created.id], null]);
    await problem(await s.call('/v1/jobs?limit=9999', key), 400, 'CR_ERR_OPT_INVALID');
    const list = (await (await s.call('/v1/jobs?state=succeeded&tenant=demo', key)).json()) as {
      jobs: { id: string }[];
    };
    assert.deepEqual(
      list.jobs.map((j) => j.id),
      [more[1], more[0], created.id],
    );
  });

  it('takes an upload (CSV) streamed through the row parser, and refuses a bad row with its line', async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:write', 'jobs:read']);
    const csv = `sessionId,note\n${ids(150)
      .map((id) => `${id},x`)
      .join('\n')}\n`;
    const up = { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv };
    const res = await s.call('/v1/jobs?tenant=demo', key, up);
    const created = (await res.json()) as { id: string; counts: { total: number } };
    assert.equal(res.status, 201, JSON.stringify(created));
    assert.equal(created.counts.total, 150);
    const last = await followToEnd(s, key, created.id);
    assert.deepEqual(last['counts'], { total: 150, reset: 150, verified: 150, failed: 0, skipped: 0 });
    const bad = { ...up, body: 'sessionId,note\nsession-1,x\n bad id,x\n' };
    const refused = await problem(
      await s.call('/v1/jobs?tenant=demo', key, bad),
      400,
      'CR_ERR_OPT_SESSION_ID',
    );
    assert.match(String(refused['detail']), /line 3/);
    await problem(
      await s.call('/v1/jobs?tenant=demo', key, { ...up, body: 'sessionId,note\n' }),
      400,
      'CR_ERR_OPT_MISSING',
    );
    await problem(
      await s.call('/v1/jobs', key, { ...up, headers: { 'content-type': 'application/xml' } }),
      415,
      'CR_ERR_API_MEDIA_TYPE',
    );
  });

  it('Idempotency-Key: the same body returns the same job; another body is refused with 422', async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:write', 'jobs:read']);
    const send = (body: unknown, idem: string): Promise<Response> =>
      s.call('/v1/jobs', key, {
        ...json(body),
        headers: { 'content-type': 'application/json', 'idempotency-key': idem },
      });
    const body = { tenant: 'demo', sessions: ids(5), dryRun: true };
    const first = (await (await send(body, 'k1')).json()) as { id: string };
    const again = await send(body, 'k1');
    assert.equal(again.status, 201);
    assert.equal(((await again.json()) as { id: string }).id, first.id);
    // The same fields in another order are the same body.
    const reordered = await send({ dryRun: true, sessions: ids(5), tenant: 'demo' }, 'k1');
    assert.equal(((await reordered.json()) as { id: string }).id, first.id);
    await problem(await send({ ...body, sessions: ids(6) }, 'k1'), 422, 'CR_ERR_API_IDEMPOTENCY');
    const other = (await (await send(body, 'k2')).json()) as { id: string };
    assert.notEqual(other.id, first.id);
  });

  it('cancels a queued job at once and a running one with what is in flight finished', async (t) => {
    const s = await startService(t, 1, 2000);
    const key = await s.key(['jobs:write', 'jobs:read']);
    const create = async (n: number): Promise<string> =>
      (
        (await (await s.call('/v1/jobs', key, json({ tenant: 'demo', sessions: ids(n) }))).json()) as {
          id: string;
        }
      ).id;
    const running = await create(2000);
    const queued = await create(10);
    const q = (await (await s.call(`/v1/jobs/${queued}`, key)).json()) as { state: string };
    assert.equal(q.state, 'queued');
    const cancelled = await s.call(`/v1/jobs/${queued}/cancel`, key, { method: 'POST' });
    assert.equal(cancelled.status, 202);
    assert.equal(((await cancelled.json()) as { state: string }).state, 'cancelled');
    assert.equal((await s.call(`/v1/jobs/${running}/cancel`, key, { method: 'POST' })).status, 202);
    const last = await followToEnd(s, key, running);
    assert.equal(last['state'], 'cancelled');
    const counts = last['counts'] as { reset: number; failed: number };
    assert.ok(counts.reset < 2000, 'the cancelled job stopped taking sessions');
    assert.equal(counts.failed, 0, 'sessions in flight finished');
    await problem(
      await s.call(`/v1/jobs/${running}/cancel`, key, { method: 'POST' }),
      409,
      'CR_ERR_API_CONFLICT',
    );
  });

  it("a key bound to a tenant neither sees nor touches another tenant's jobs", async (t) => {
    const s = await startService(t);
    const admin = await s.key(['jobs:write', 'jobs:read']);
    const bound = await s.key(['jobs:write', 'jobs:read'], ['other']);
    const demoJob = (
      (await (
        await s.call('/v1/jobs', admin, json({ tenant: 'demo', sessions: ids(3), dryRun: true }))
      ).json()) as { id: string }
    ).id;
    await problem(
      await s.call('/v1/jobs', bound, json({ tenant: 'demo', sessions: ids(3) })),
      403,
      'CR_ERR_API_FORBIDDEN',
    );
    await problem(await s.call(`/v1/jobs/${demoJob}`, bound), 403, 'CR_ERR_API_FORBIDDEN');
    await problem(await s.call(`/v1/jobs/${demoJob}/outcomes`, bound), 403, 'CR_ERR_API_FORBIDDEN');
    await problem(
      await s.call(`/v1/jobs/${demoJob}/cancel`, bound, { method: 'POST' }),
      403,
      'CR_ERR_API_FORBIDDEN',
    );
    await problem(await s.call('/v1/jobs?tenant=demo', bound), 403, 'CR_ERR_API_FORBIDDEN');
    const seen = (await (await s.call('/v1/jobs', bound)).json()) as { jobs: unknown[] };
    assert.deepEqual(seen.jobs, []);
  });

  it('serves the OpenAPI 3.1 document of every route, and the dashboard', async (t) => {
    const s = await startService(t);
    const doc = (await (await s.call('/openapi.json', undefined)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/v1/audit/records',
      '/v1/audit/verify',
      '/v1/jobs',
      '/v1/jobs/preview',
      '/v1/jobs/{id}',
      '/v1/jobs/{id}/cancel',
      '/v1/jobs/{id}/events',
      '/v1/jobs/{id}/outcomes',
      '/v1/jobs/{id}/resume',
      '/v1/key',
      '/v1/sessions/{sessionId}/reset',
    ]);
    assert.ok(doc.paths['/v1/jobs']!['post']);
    // Refusals are documented as they are sent: problem+json, the rate limit's 429 on every route.
    for (const [path, methods] of Object.entries(doc.paths))
      for (const [method, operation] of Object.entries(methods)) {
        const { responses } = operation as {
          responses: Record<string, { content?: Record<string, unknown> }>;
        };
        for (const status of ['401', '429'])
          assert.ok(responses[status]?.content?.['application/problem+json'], `${method} ${path} ${status}`);
      }
    assert.equal((await s.call('/docs', undefined)).status, 200);
    const page = await s.call('/', undefined);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  });

  it('limits requests per key, as 429 problem+json with retry-after; other keys are not held back', async (t) => {
    const s = await startService(t, 2, 10, 3);
    const busy = await s.key(['jobs:read']);
    const calm = await s.key(['jobs:read']);
    for (let i = 0; i < 3; i++) assert.equal((await s.call('/v1/jobs', busy)).status, 200);
    const limited = await s.call('/v1/jobs', busy);
    assert.ok(limited.headers.get('retry-after') !== null);
    await problem(limited, 429, 'CR_ERR_API_RATE_LIMITED');
    assert.equal((await s.call('/v1/jobs', calm)).status, 200);
    assert.equal((await s.call('/healthz', undefined)).status, 200);
  });

  it("counts a key's requests however its scheme is spelled, and refused keys per address", async (t) => {
    const s = await startService(t, 2, 10, 3);
    const key = await s.key(['jobs:read']);
    const as = (scheme: string) => ({ headers: { authorization: `${scheme} ${key}` } });
    for (const scheme of ['Bearer', 'bearer', 'BEARER'])
      assert.equal((await s.call('/v1/jobs', undefined, as(scheme))).status, 200);
    await problem(await s.call('/v1/jobs', undefined, as('bEaReR')), 429, 'CR_ERR_API_RATE_LIMITED');
    // Guessed keys: each is unknown (401) until the address has sent its limit, then 429.
    for (let i = 0; i < 3; i++)
      await problem(await s.call('/v1/jobs', `crk_guess-${i}`), 401, 'CR_ERR_API_UNAUTHORIZED');
    await problem(await s.call('/v1/jobs', 'crk_guess-3'), 429, 'CR_ERR_API_RATE_LIMITED');
    await problem(await s.call('/v1/jobs', undefined), 429, 'CR_ERR_API_RATE_LIMITED');
  });
});

describe('serve: the config file', () => {
  it('reads secrets from the environment, and names a missing one without any value', () => {
    const config = {
      tenants: { acme: { transport: 'runtime-ws', url: 'wss://e.example/ws', tokenEnv: 'ACME_TOKEN' } },
    };
    const parsed = parseConfig(config, { ACME_TOKEN: 's3cret-token' });
    assert.deepEqual(parsed.tenants.get('acme')!.credentials.secrets(), ['s3cret-token']);
    assert.equal(parsed.maxRunningJobs, 2);
    assert.throws(
      () => parseConfig(config, {}),
      (err: Error & { code?: string }) => err.code === 'CR_ERR_API_CONFIG' && /ACME_TOKEN/.test(err.message),
    );
    // Two tenants of one engine tenant id: their audit records could not be told apart.
    assert.throws(
      () =>
        parseConfig(
          {
            tenants: { acme: config.tenants.acme, 'acme-test': { ...config.tenants.acme, tenantId: 'acme' } },
          },
          { ACME_TOKEN: 'x' },
        ),
      (err: Error & { code?: string }) =>
        err.code === 'CR_ERR_API_CONFIG' &&
        /tenant acme-test: tenantId "acme" is tenant acme's too/.test(err.message),
    );
    assert.throws(
      () =>
        parseConfig({ tenants: { acme: { ...config.tenants.acme, token: 'inline' } } }, { ACME_TOKEN: 'x' }),
      (err: Error & { code?: string }) => err.code === 'CR_ERR_API_CONFIG' && !err.message.includes('inline'),
    );
  });
});

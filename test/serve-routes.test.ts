/**
 * The service's routes beyond create / list / cancel, in process against the emulator on a real SQLite
 * store: resuming a job, resetting one session, a job chosen by a selector (its sessions equal the
 * emulator's ground truth), and jobs of one tenant drawing on one flow controller.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SEED_FLOWS } from '../src/emulator/steps.js';
import { expectedFlow, groundTruth } from './helpers/ground-truth.js';
import {
  followToEnd,
  followUntil,
  ids,
  json,
  problem,
  startService,
  type Service,
} from './helpers/service.js';

const post = { method: 'POST' };

async function create(s: Service, key: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await s.call('/v1/jobs', key, json(body));
  const job = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, 201, JSON.stringify(job));
  return job;
}

async function outcomes(
  s: Service,
  key: string,
  id: string,
): Promise<{ sessionId: string; outcome: string }[]> {
  const text = (await (await s.call(`/v1/jobs/${id}/outcomes`, key)).text()).trim();
  return text === ''
    ? []
    : text.split('\n').map((line) => JSON.parse(line) as { sessionId: string; outcome: string });
}

async function auditOf(s: Service, query: string): Promise<Record<string, unknown>[]> {
  const auditor = await s.key(['audit:read']);
  const text = (await (await s.call(`/v1/audit/records?${query}`, auditor)).text()).trim();
  return text === '' ? [] : text.split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

const stats = async (s: Service): Promise<{ sends: number }> =>
  (await (await fetch(`${s.emulator.httpUrl}/emulator/stats`)).json()) as { sends: number };

describe('serve: resuming a job', () => {
  it('resumes a cancelled job: done sessions are skipped, the state of the others is checked first, none is sent twice', async (t) => {
    const s = await startService(t, 1, 1000);
    const key = await s.key(['jobs:write', 'jobs:read']);
    // An engine that answers 100 sends and holds the rest, so that the job is cancelled part way (a slow
    // one was not enough: the in-flight limit grows to match it, and the job could end before the cancel).
    s.emulator.setFaults({ holdAfterSends: 100 });
    const job = await create(s, key, { tenant: 'demo', sessions: ids(1000) });
    const id = String(job['id']);
    // Refused while it is queued or running: it goes on by itself.
    await problem(await s.call(`/v1/jobs/${id}/resume`, key, post), 409, 'CR_ERR_API_NOT_RESUMABLE');
    await followUntil(s, key, id, (status) => Number(status['done']) >= 50);
    assert.equal((await s.call(`/v1/jobs/${id}/cancel`, key, post)).status, 202);
    // The held answers come: the sessions in flight finish, and the cancel takes no new one.
    s.emulator.setFaults({ holdAfterSends: 0 });
    const cancelled = await followToEnd(s, key, id);
    assert.equal(cancelled['state'], 'cancelled');
    const first = await outcomes(s, key, id);
    assert.ok(first.length >= 50 && first.length < 1000, `the cancel stopped the job after ${first.length}`);
    const reached = new Set(first.map((o) => o.sessionId));
    assert.ok(!reached.has('session-1000'));
    // Reset meanwhile by other means: the resumed job must find it reset, and not send it again.
    const one = await s.call('/v1/sessions/session-1000/reset', key, json({ tenant: 'demo' }));
    assert.equal(((await one.json()) as { outcome: string }).outcome, 'reset');
    const sendsBefore = (await stats(s)).sends;

    const res = await s.call(`/v1/jobs/${id}/resume`, key, post);
    assert.equal(res.status, 202);
    const resumed = (await res.json()) as { id: string; state: string; cancelRequested: boolean };
    assert.equal(resumed.id, id);
    assert.equal(resumed.cancelRequested, false);
    const last = await followToEnd(s, key, id);
    assert.equal(last['state'], 'succeeded', JSON.stringify(last));
    const counts = last['counts'] as { total: number; reset: number; skipped: number; failed: number };
    assert.equal(counts.total, 1000);
    assert.equal(counts.failed, 0);
    assert.equal(counts.reset + counts.skipped, 1000);
    // The counts are the job's over both runs (its ledgers'): what the first run reset, and each send of
    // the second one.
    assert.equal(
      (await stats(s)).sends - sendsBefore + first.filter((o) => o.outcome === 'reset').length,
      counts.reset,
      'each send reset a session not reset before',
    );
    const all = await outcomes(s, key, id);
    // Each session once: what the first run listed stands, and the second lists only what it did.
    assert.equal(new Set(all.map((o) => o.sessionId)).size, 1000);
    assert.equal(all.length, 1000, 'each session listed once');
    const second = all.slice(first.length);
    assert.equal(second.find((o) => o.sessionId === 'session-1000')?.outcome, 'skipped');
    const resetOnce = [...first, ...second].filter((o) => o.outcome === 'reset').map((o) => o.sessionId);
    assert.equal(new Set(resetOnce).size, resetOnce.length, 'no session reset twice');
    assert.equal(resetOnce.length + 1, 1000, 'every session reset once, session-1000 by the reset route');
    // The store lists it as it ended.
    const stored = (await s.store.getServiceJob(id))!;
    assert.equal(stored.state, 'succeeded');
    await problem(await s.call(`/v1/jobs/${id}/resume`, key, post), 409, 'CR_ERR_API_NOT_RESUMABLE');
  });

  it('refuses a resume without jobs:write (403), for another tenant (403), and of no job (404)', async (t) => {
    const s = await startService(t);
    const admin = await s.key(['jobs:write', 'jobs:read']);
    const job = await create(s, admin, { tenant: 'demo', sessions: ids(3), dryRun: true });
    const path = `/v1/jobs/${String(job['id'])}/resume`;
    await problem(await s.call(path, undefined, post), 401, 'CR_ERR_API_UNAUTHORIZED');
    await problem(await s.call(path, await s.key(['jobs:read']), post), 403, 'CR_ERR_API_FORBIDDEN');
    const bound = await s.key(['jobs:write', 'jobs:read'], ['other']);
    await problem(await s.call(path, bound, post), 403, 'CR_ERR_API_FORBIDDEN');
    await problem(await s.call('/v1/jobs/job_nope/resume', admin, post), 404, 'CR_ERR_API_NOT_FOUND');
  });
});

describe('serve: resetting one session', () => {
  it("resets one session and answers its outcome in the CLI's shape; the audit record names the key", async (t) => {
    const s = await startService(t);
    const writer = await s.key(['jobs:write']);
    const [record] = await s.store.listApiKeys();
    const res = await s.call(
      '/v1/sessions/session-7/reset',
      writer,
      json({ tenant: 'demo', reason: 'INC-9' }),
    );
    const outcome = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, JSON.stringify(outcome));
    assert.deepEqual(Object.keys(outcome), [
      'sessionId',
      'outcome',
      'verified',
      'latencyMs',
      'attempts',
      'error',
    ]);
    assert.deepEqual(
      [outcome['sessionId'], outcome['outcome'], outcome['verified'], outcome['error']],
      ['session-7', 'reset', true, null],
    );
    const engine = (await (await fetch(`${s.emulator.httpUrl}/emulator/sessions/session-7`)).json()) as {
      flowState: string;
    };
    assert.equal(engine.flowState, 'RESET');
    const audit = await auditOf(s, 'sessionId=session-7');
    assert.equal(audit.length, 1);
    assert.deepEqual(
      [audit[0]!['actor'], audit[0]!['reason'], audit[0]!['jobId'], audit[0]!['outcome']],
      [`key:${record!.id}`, 'INC-9', null, 'reset'],
    );
    // A session the engine does not know is an outcome too, not a refusal.
    const unknown = (await (
      await s.call('/v1/sessions/session-99999/reset', writer, json({ tenant: 'demo' }))
    ).json()) as { outcome: string; error: { code: string } };
    assert.deepEqual([unknown.outcome, unknown.error.code], ['failed', 'CR_ERR_RESET_SESSION_NOT_FOUND']);
  });

  it('refuses without jobs:write (403), for another tenant (403), and a malformed session id (400)', async (t) => {
    const s = await startService(t);
    const body = json({ tenant: 'demo' });
    await problem(
      await s.call('/v1/sessions/session-1/reset', undefined, body),
      401,
      'CR_ERR_API_UNAUTHORIZED',
    );
    const reader = await s.key(['jobs:read', 'audit:read']);
    await problem(await s.call('/v1/sessions/session-1/reset', reader, body), 403, 'CR_ERR_API_FORBIDDEN');
    const bound = await s.key(['jobs:write'], ['other']);
    await problem(await s.call('/v1/sessions/session-1/reset', bound, body), 403, 'CR_ERR_API_FORBIDDEN');
    const writer = await s.key(['jobs:write']);
    await problem(
      await s.call('/v1/sessions/%20session-1/reset', writer, body),
      400,
      'CR_ERR_OPT_SESSION_ID',
    );
    await problem(
      await s.call('/v1/sessions/session-%EF%BF%BD1/reset', writer, body),
      400,
      'CR_ERR_OPT_SESSION_ID',
    );
    await problem(
      await s.call('/v1/sessions/session-1/reset', writer, json({ tenant: 'demo', nope: 1 })),
      400,
      'CR_ERR_OPT_INVALID',
    );
    const engine = (await (await fetch(`${s.emulator.httpUrl}/emulator/sessions/session-1`)).json()) as {
      flowState: string;
    };
    assert.equal(engine.flowState, 'ACTIVE', 'nothing was reset');
  });
});

describe('serve: a job chosen by a selector', () => {
  it('resets exactly the sessions the emulator says ran the Flow, once confirmed, with the selector in each audit record', async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:write', 'jobs:read']);
    const flow = SEED_FLOWS[1]!.referenceId;
    const expected = expectedFlow(await groundTruth(s.emulator.httpUrl, 300), flow).map((r) => r.sessionId);
    assert.ok(expected.length > 10 && expected.length < 300, `${expected.length} sessions ran the Flow`);
    const body = { tenant: 'demo', selector: { flow }, reason: 'INC-7' };
    // Unconfirmed, or a count off the expected one: 422 with the count, and no job.
    const unconfirmed = await problem(
      await s.call('/v1/jobs', key, json(body)),
      422,
      'CR_ERR_SELECT_UNCONFIRMED',
    );
    assert.equal(unconfirmed['count'], expected.length);
    const off = await problem(
      await s.call('/v1/jobs', key, json({ ...body, expect: expected.length + 50, expectMargin: 1 })),
      422,
      'CR_ERR_SELECT_COUNT_MISMATCH',
    );
    assert.equal(off['count'], expected.length);
    assert.deepEqual(((await (await s.call('/v1/jobs', key)).json()) as { jobs: unknown[] }).jobs, []);
    // The preview lists what the selector matches, with no confirmation: nothing is sent.
    const preview = await s.call('/v1/jobs/preview?first=2', key, json(body));
    assert.equal(preview.status, 200);
    const previewed = (await preview.json()) as { count: number; directives: { sessionId: string }[] };
    assert.equal(previewed.count, expected.length);
    for (const { sessionId } of previewed.directives) assert.ok(expected.includes(sessionId), sessionId);
    assert.equal(previewed.directives.length, 2);
    // Neither sessions nor a selector, or both: refused, by the preview too.
    for (const path of ['/v1/jobs', '/v1/jobs/preview']) {
      await problem(await s.call(path, key, json({ tenant: 'demo' })), 400, 'CR_ERR_OPT_MISSING');
      await problem(
        await s.call(path, key, json({ ...body, sessions: ['session-1'], confirm: true })),
        400,
        'CR_ERR_OPT_INVALID',
      );
    }

    const job = await create(s, key, { ...body, expect: expected.length, expectMargin: 0 });
    assert.deepEqual(job['selector'], { flow });
    const last = await followToEnd(s, key, String(job['id']));
    assert.equal(last['state'], 'succeeded', JSON.stringify(last));
    const done = (await outcomes(s, key, String(job['id']))).map((o) => o.sessionId).sort();
    assert.deepEqual(done, [...expected].sort());
    const audit = await auditOf(s, `jobId=${String(job['id'])}`);
    assert.equal(audit.length, expected.length);
    for (const record of audit) assert.equal(record['reason'], `INC-7 [selector: flow=${flow}]`);
    // A dry run needs no confirmation; `limit` bounds the list.
    const dry = await create(s, key, { tenant: 'demo', selector: { flow, limit: 5 }, dryRun: true });
    assert.equal((dry['counts'] as { total: number }).total, 5);
  });

  it("refuses a selector for a tenant with no OData endpoint, and never shows a tenant's OData key", async (t) => {
    const s = await startService(t);
    const key = await s.key(['jobs:write', 'jobs:read']);
    const selector = { flow: SEED_FLOWS[0]!.referenceId };
    const none = await problem(
      await s.call('/v1/jobs', key, json({ tenant: 'other', selector, confirm: true })),
      400,
      'CR_ERR_OPT_INVALID',
    );
    assert.equal(none['field'], 'selector');
    const res = await s.call('/v1/jobs', key, json({ tenant: 'badkey', selector, confirm: true }));
    const text = await res.text();
    assert.equal(res.status, 502, text);
    assert.equal((JSON.parse(text) as { code: string }).code, 'CR_ERR_SELECT_UNAUTHORIZED');
    assert.ok(!text.includes(s.badOdataKey), 'the OData key is not in the answer');
    await problem(
      await s.call('/v1/jobs', await s.key(['jobs:write'], ['other']), json({ tenant: 'demo', selector })),
      403,
      'CR_ERR_API_FORBIDDEN',
    );
  });
});

describe("serve: one tenant's jobs share its flow control", () => {
  it("two jobs of one tenant draw on one flow controller; another tenant's job on its own", async (t) => {
    const s = await startService(t, 2, 300);
    const key = await s.key(['jobs:write', 'jobs:read']);
    const a = String((await create(s, key, { tenant: 'demo', sessions: ids(300) }))['id']);
    const b = String((await create(s, key, { tenant: 'demo', sessions: ids(300) }))['id']);
    const [endA, endB] = await Promise.all([followToEnd(s, key, a), followToEnd(s, key, b)]);
    const c = String((await create(s, key, { tenant: 'other', sessions: ids(3) }))['id']);
    const endC = await followToEnd(s, key, c);
    assert.equal(endA['state'], 'succeeded');
    assert.equal(endB['state'], 'succeeded');
    assert.match(String(endA['flowController']), /^fc-\d+$/);
    assert.equal(endA['flowController'], endB['flowController']);
    assert.match(String(endC['flowController']), /^fc-\d+$/);
    assert.notEqual(endC['flowController'], endA['flowController']);
    // As the store keeps them, after their runs.
    const listed = (await (await s.call('/v1/jobs?tenant=demo', key)).json()) as {
      jobs: { id: string; flowController: string }[];
    };
    assert.deepEqual(
      listed.jobs.map((j) => [j.id, j.flowController]),
      [
        [b, endA['flowController']],
        [a, endA['flowController']],
      ],
    );
  });
});

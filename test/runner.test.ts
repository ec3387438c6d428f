/**
 * The runner's handle, as a service uses it: status while it runs, stop and abort, two jobs in one
 * process kept apart, and a teardown that finishes whatever one step throws.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import type { BulkTarget } from '../src/reset/bulk.js';
import { SEED_FLOWS } from '../src/emulator/steps.js';
import { selectorTargets } from '../src/runner/select-targets.js';
import { jobSpec } from '../src/runner/spec.js';
import { type JobTargets, startJob, type StartJobDeps } from '../src/runner/start-job.js';
import type { JobEvent, JobHandle, JobSpec } from '../src/runner/types.js';
import { ResetMetrics } from '../src/sinks/prometheus.js';
import { openStore, type Store } from '../src/store/index.js';
import { StaticTokenProvider } from '../src/transports/auth/token-provider.js';
import { withDeadline } from './helpers/ws.js';

function specFor(emu: Emulator, extra: Record<string, unknown> = {}): JobSpec {
  return jobSpec({
    transport: 'runtime-ws',
    url: emu.wsUrl,
    tenant: 't',
    botId: 'b',
    actor: 'principal:runner-test',
    flowControl: { rate: 100_000, fixed: true },
    ...extra,
  });
}

const deps = (extra: Partial<StartJobDeps> = {}): StartJobDeps => ({
  credentials: { tokens: () => new StaticTokenProvider('dev-token'), secrets: () => ['dev-token'] },
  log: pino({ level: 'silent' }),
  ...extra,
});

/** `n` targets `prefix-<from>`… at input indexes `from - 1`…, in one batch: a part of a larger input. */
function part(prefix: string, from: number, n: number): JobTargets {
  return {
    total: n,
    batches: () => [
      Array.from({ length: n }, (_, i) => ({ sessionId: `${prefix}-${from + i}`, index: from - 1 + i })),
    ],
  };
}

/** `n` targets named `prefix-1`…; `endless`: no end until the job stops reading. */
function targets(prefix: string, n: number, endless = false): JobTargets {
  return {
    total: endless ? undefined : n,
    async *batches(stop) {
      for (let i = 0; endless || i < n; i++) {
        if (stop.aborted) return;
        await Promise.resolve();
        yield [{ sessionId: `${prefix}-${(i % n) + 1}`, index: i } satisfies BulkTarget];
      }
    },
  };
}

async function outcomesOf(
  job: JobHandle,
  onEach?: (event: JobEvent, n: number) => void,
): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of job.events()) {
    events.push(event);
    onEach?.(event, events.length);
  }
  return events;
}

function tempState(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cr-runner-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'state.sqlite');
}

describe('runner: the job handle', () => {
  it('status() counts as the job goes, with a rate and an ETA, and ends done with the summary', async (t) => {
    const emu = await startEmulator({ sessions: 200 });
    t.after(() => emu.close());
    const job = startJob(specFor(emu), targets('session', 200), deps());
    let midRun: ReturnType<JobHandle['status']> | undefined;
    const events = await withDeadline(
      outcomesOf(job, (_event, n) => {
        if (n === 150) midRun = job.status();
      }),
      30_000,
      'job events',
    );
    const summary = await job.done;
    assert.equal(events.length, 200);
    assert.equal(summary.reset, 200);
    assert.equal(summary.verified, 200);
    assert.ok(midRun !== undefined);
    assert.equal(midRun.state, 'running');
    assert.equal(midRun.total, 200);
    assert.ok(midRun.counts.done >= 150 && midRun.counts.done < 200 + 1);
    const end = job.status();
    assert.equal(end.state, 'done');
    assert.deepEqual(end.counts, { done: 200, reset: 200, failed: 0, skipped: 0 });
  });

  it('stop() takes no new session, lets those in flight finish, and ends the events', async (t) => {
    const emu = await startEmulator({ sessions: 50 });
    t.after(() => emu.close());
    const job = startJob(specFor(emu), targets('session', 50, true), deps());
    const events = await withDeadline(
      outcomesOf(job, (_event, n) => {
        if (n === 20) job.stop();
      }),
      30_000,
      'stopped job',
    );
    const summary = await job.done;
    assert.equal(summary.interrupted, true);
    assert.equal(summary.fatal, null);
    // Every session taken was finished and reported: none cut off.
    assert.equal(events.length, summary.total);
    assert.ok(summary.total >= 20 && summary.total < 20 + 64, `took ${summary.total}`);
    assert.equal(summary.failed, 0);
  });

  it('abort() cuts the resets in flight too', async (t) => {
    const emu = await startEmulator({ sessions: 0 });
    t.after(() => emu.close());
    for (let i = 1; i <= 8; i++) emu.store.create({ sessionId: `busy-${i}`, blockingMs: 60_000 });
    const job = startJob(specFor(emu, { pipeline: { verifyTimeoutSec: 120 } }), targets('busy', 8), deps());
    const seen = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (emu.stats().sends >= 8) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const reading = outcomesOf(job);
    await withDeadline(seen, 20_000, 'the sends');
    job.abort();
    const summary = await withDeadline(job.done, 20_000, 'aborted job');
    await reading;
    assert.equal(summary.interrupted, true);
    assert.equal(summary.verified, 0);
  });

  it('two jobs in one process keep their events and their metrics apart', async (t) => {
    const emu = await startEmulator({ sessions: 0 });
    t.after(() => emu.close());
    for (let i = 1; i <= 60; i++) emu.store.create({ sessionId: `a-${i}` });
    for (let i = 1; i <= 40; i++) emu.store.create({ sessionId: `b-${i}` });
    const metricsA = new ResetMetrics({ jobId: 'job-a' });
    const metricsB = new ResetMetrics({ jobId: 'job-b' });
    t.after(() => (metricsA.close(), metricsB.close()));
    const a = startJob(specFor(emu, { jobId: 'job-a' }), targets('a', 60), deps({ metrics: metricsA }));
    const b = startJob(specFor(emu, { jobId: 'job-b' }), targets('b', 40), deps({ metrics: metricsB }));
    const [eventsA, eventsB] = await withDeadline(
      Promise.all([outcomesOf(a), outcomesOf(b)]),
      30_000,
      'jobs',
    );
    await Promise.all([a.done, b.done]);
    const idsOf = (events: JobEvent[]): string[] =>
      events.flatMap((e) => (e.type === 'outcome' ? [e.outcome.sessionId] : []));
    assert.equal(eventsA.length, 60);
    assert.equal(eventsB.length, 40);
    assert.ok(idsOf(eventsA).every((id) => id.startsWith('a-')));
    assert.ok(idsOf(eventsB).every((id) => id.startsWith('b-')));
    const outcomes = async (m: ResetMetrics): Promise<number> =>
      (await m.registry.getSingleMetric('cognigy_reset_outcomes_total')!.get()).values.reduce(
        (sum, v) => sum + v.value,
        0,
      );
    assert.equal(await outcomes(metricsA), 60);
    assert.equal(await outcomes(metricsB), 40);
  });

  it('two runs of one job over ledgers of their own: each claims and records its own, both name the job', async (t) => {
    const emu = await startEmulator({ sessions: 0 });
    t.after(() => emu.close());
    for (let i = 1; i <= 30; i++) emu.store.create({ sessionId: `c-${i}` });
    const store = await openStore(tempState(t));
    t.after(() => store.close());
    const half = (ledgerId: string, from: number): JobHandle =>
      startJob(specFor(emu, { jobId: 'job-c', ledgerId }), part('c', from, 15), deps({ store }));
    // At once: a ledger of its own each, so neither finds the other's lease.
    const runs = [half('job-c.c0', 1), half('job-c.c1', 16)];
    const events = await withDeadline(Promise.all(runs.map((run) => outcomesOf(run))), 30_000, 'runs');
    const summaries = await Promise.all(runs.map((run) => run.done));
    assert.deepEqual(
      summaries.map((s) => [s.jobId, s.reset]),
      [
        ['job-c', 15],
        ['job-c', 15],
      ],
    );
    assert.ok(events.flat().every((e) => e.jobId === 'job-c'));
    const ledgers = (await store.listJobs()).map((job) => [job.jobId, job.finished]).sort();
    assert.deepEqual(ledgers, [
      ['job-c.c0', true],
      ['job-c.c1', true],
    ]);
    const records = [];
    for await (const record of store.auditRecords({ jobId: 'job-c' })) records.push(record);
    assert.equal(records.length, 30);
  });

  it("two runs of one job in one process, one metrics registry, each posting to the tenant's webhook: both run, and the metrics count both", async (t) => {
    const emu = await startEmulator({ sessions: 0 });
    t.after(() => emu.close());
    for (let i = 1; i <= 20; i++) emu.store.create({ sessionId: `w-${i}` });
    const store = await openStore(tempState(t));
    t.after(() => store.close());
    const posted: string[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        for (const e of (JSON.parse(body) as { events: { sessionId: string }[] }).events)
          posted.push(e.sessionId);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    t.after(() => hook.close());
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`;
    const metrics = new ResetMetrics({ jobId: 'job-w' });
    t.after(() => metrics.close());
    // One after the other, as a replica's second run of a job it took a chunk of again.
    for (const [ledgerId, from] of [
      ['job-w.c0', 1],
      ['job-w.c1', 11],
    ] as const) {
      const run = startJob(
        specFor(emu, { jobId: 'job-w', ledgerId, sinks: { webhook: { url } } }),
        part('w', from, 10),
        deps({ store, metrics }),
      );
      await withDeadline(outcomesOf(run), 30_000, ledgerId);
      const summary = await run.done;
      assert.equal(summary.fatal, null, JSON.stringify(summary.fatal));
      assert.equal(summary.reset, 10);
    }
    assert.deepEqual([...posted].sort(), Array.from({ length: 20 }, (_, i) => `w-${i + 1}`).sort());
    const value = async (name: string): Promise<number> =>
      (await metrics.registry.getSingleMetric(name)!.get()).values.reduce((sum, v) => sum + v.value, 0);
    assert.equal(await value('cognigy_reset_analytics_events_delivered_total'), 20);
    assert.equal(await value('cognigy_reset_analytics_events_pending'), 0);
  });

  it('one run over several ledgers (ledgerOf): each index recorded under its ledger, a settled ledger finished and released at once', async (t) => {
    const emu = await startEmulator({ sessions: 0 });
    t.after(() => emu.close());
    for (let i = 0; i < 30; i++) emu.store.create({ sessionId: `m-${i}` });
    const store = await openStore(tempState(t));
    t.after(() => store.close());
    const ledgerOf = (index: number): string => `job-m.c${Math.floor(index / 10)}`;
    const run = startJob(
      specFor(emu, { jobId: 'job-m' }),
      {
        total: 30,
        batches: () => [Array.from({ length: 30 }, (_, i) => ({ sessionId: `m-${i}`, index: i }))],
      },
      deps({ store, ledgerOf }),
    );
    let settled = false;
    const outcomes: number[] = [];
    for await (const event of run.events()) {
      if (event.type !== 'outcome') continue;
      outcomes.push(event.index);
      // The first ledger's ten sessions all have an outcome: it is settled while the run goes on.
      if (!settled && [...Array(10).keys()].every((i) => outcomes.includes(i))) {
        settled = true;
        await run.settleLedger('job-m.c0', true);
        // Finished and released while the run still holds the others.
        const ledgers = new Map((await store.listJobs()).map((job) => [job.jobId, job]));
        assert.equal(ledgers.get('job-m.c0')?.finished, true);
        assert.equal(ledgers.get('job-m.c0')?.lease, null);
      }
    }
    const summary = await run.done;
    assert.equal(summary.reset, 30);
    for (const id of ['job-m.c0', 'job-m.c1', 'job-m.c2'])
      assert.equal((await store.ledgerCounts([id])).outcomes['reset'], 10, id);
    const records = [];
    for await (const record of store.auditRecords({ jobId: 'job-m' })) records.push(record);
    assert.equal(records.length, 30);
  });

  it('a teardown step that throws is reported after the summary; the steps after it still run', async (t) => {
    const emu = await startEmulator({ sessions: 30 });
    t.after(() => emu.close());
    const statePath = tempState(t);
    const seen = new Map<string, number>();
    const failing = deps({
      store: statePath,
      seen: () => ({
        firstIndex: (id: string, index: number) => {
          const first = seen.get(id);
          if (first === undefined) seen.set(id, index);
          return first;
        },
        close: () => {
          throw new Error('seen-ids close failed');
        },
      }),
    });
    const job = startJob(specFor(emu, { jobId: 'teardown' }), targets('session', 30), failing);
    await outcomesOf(job);
    const summary = await job.done;
    assert.equal(summary.verified, 30);
    assert.match(String(summary.lateError), /seen-ids close failed/);
    // The claim was given up and the job finished: a second run of it resumes, skips all 30 as done.
    const again = startJob(
      specFor(emu, { jobId: 'teardown' }),
      targets('session', 30),
      deps({ store: statePath }),
    );
    await outcomesOf(again);
    const second = await again.done;
    assert.equal(second.skipped, 30);
    assert.equal(second.lateError, undefined);
  });

  it('a writer that fails to close, or a job that fails to finish: reported, and the lease is still given up', async (t) => {
    const emu = await startEmulator({ sessions: 40 });
    t.after(() => emu.close());
    const store = await openStore(tempState(t));
    t.after(() => store.close());
    // The real store, with one step of the teardown made to fail.
    const failing = (step: 'writer' | 'finish'): Store =>
      new Proxy(store, {
        get(target, name, receiver) {
          if (step === 'writer' && name === 'writer')
            return async () => {
              const writer = await target.writer();
              return {
                append: (item: Parameters<typeof writer.append>[0]) => writer.append(item),
                ack: (ids: readonly number[]) => writer.ack(ids),
                close: async () => {
                  await writer.close();
                  throw new Error('writer close failed');
                },
              };
            };
          if (step === 'finish' && name === 'openJob')
            return async (options: Parameters<Store['openJob']>[0]) => {
              const job = await target.openJob(options);
              return new Proxy(job, {
                get: (j, key) => {
                  if (key === 'finish') return () => Promise.reject(new Error('finish failed'));
                  const value = Reflect.get(j, key) as unknown;
                  return typeof value === 'function'
                    ? (value as (...a: unknown[]) => unknown).bind(j)
                    : value;
                },
              });
            };
          const value = Reflect.get(target, name, receiver) as unknown;
          // The store keeps private fields: its own methods run on it, not on the proxy.
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    for (const [step, jobId] of [
      ['writer', 'close-writer'],
      ['finish', 'close-finish'],
    ] as const) {
      const job = startJob(specFor(emu, { jobId }), targets('session', 20), deps({ store: failing(step) }));
      await outcomesOf(job);
      const summary = await job.done;
      assert.equal(summary.verified, 20);
      assert.match(String(summary.lateError), step === 'writer' ? /writer close failed/ : /finish failed/);
      const record = (await store.listJobs()).find((j) => j.jobId === jobId);
      assert.equal(record?.lease, null, `${step}: the lease was given up`);
      assert.equal(record?.finished, false, `${step}: the job is not marked finished`);
      // Every outcome was committed with its audit record all the same.
      const ids: string[] = [];
      for await (const r of store.auditRecords({ jobId })) ids.push(r.sessionId);
      assert.equal(ids.length, 20);
    }
  });

  it('a spec error names the spec field, and nothing starts', () => {
    const base = { transport: 'runtime-ws', url: 'ws://127.0.0.1:1', actor: 'x', tenant: 't', botId: 'b' };
    const fieldOf = (extra: Record<string, unknown>): [string | undefined, string | undefined, string] => {
      try {
        jobSpec({ ...base, ...extra });
      } catch (err) {
        const e = err as Error & { field?: string; code?: string };
        return [e.code, e.field, e.message];
      }
      return [undefined, undefined, 'accepted'];
    };
    assert.deepEqual(fieldOf({ pipeline: { concurrency: 0 } }).slice(0, 2), [
      'CR_ERR_OPT_INVALID',
      'pipeline.concurrency',
    ]);
    assert.equal(fieldOf({ maxDurationSec: 5 })[1], 'maxDurationSec');
    const [, field, message] = fieldOf({ verbose: true });
    assert.equal(field, 'verbose');
    assert.match(message, /not a field/);
    assert.deepEqual(fieldOf({ tenant: '' }).slice(0, 2), ['CR_ERR_OPT_MISSING', 'tenant']);
    assert.equal(fieldOf({ flowControl: { fixed: true } })[1], 'flowControl.rate');
    assert.equal(fieldOf({})[2], 'accepted');
    const odataUrl = 'http://127.0.0.1:1';
    assert.deepEqual(fieldOf({ selector: { flow: 'f' } }).slice(0, 2), [
      'CR_ERR_OPT_MISSING',
      'selector.odataUrl',
    ]);
    assert.deepEqual(fieldOf({ selector: { odataUrl } }).slice(0, 2), [
      'CR_ERR_OPT_MISSING',
      'selector.flow',
    ]);
    assert.equal(fieldOf({ selector: { flow: 'f', node: 'n', odataUrl } })[1], 'selector.node');
    assert.equal(fieldOf({ selector: { flow: 'f', since: 'yesterday', odataUrl } })[1], 'selector.since');
    assert.equal(
      fieldOf({ selector: { flow: 'f', odataUrl: 'http://odata.example' } })[0],
      'CR_ERR_OPT_INSECURE_URL',
    );
    assert.equal(
      fieldOf({ selector: { flow: 'f', since: '2026-01-01', limit: 5, odataUrl } })[2],
      'accepted',
    );
    assert.equal(fieldOf({ engine: '' })[1], 'engine');
    assert.deepEqual(fieldOf({ ledgerId: 'job-1.c0' }).slice(0, 2), ['CR_ERR_OPT_MISSING', 'jobId']);
    assert.equal(fieldOf({ jobId: 'job-1', ledgerId: 'job-1.c0' })[2], 'accepted');
  });

  it("a selector's rows are the job's targets, and each audit record names the selector after the reason", async (t) => {
    const emu = await startEmulator({ sessions: 60, tenant: 't', botId: 'b' });
    const dir = mkdtempSync(join(tmpdir(), 'cr-runner-select-'));
    const store = await openStore(join(dir, 'state.sqlite'));
    t.after(async () => {
      await store.close();
      await emu.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const flow = SEED_FLOWS[0]!.referenceId;
    const spec = specFor(emu, { reason: 'INC-3', selector: { flow, limit: 7, odataUrl: emu.httpUrl } });
    const credentials = { ...deps().credentials, odataKey: 'dev-token' };
    const job = startJob(spec, selectorTargets(spec, credentials), deps({ credentials, store }));
    const events = await withDeadline(outcomesOf(job), 30_000, 'the job');
    const summary = await job.done;
    assert.equal(summary.reset, 7);
    const ids = events.flatMap((e) => (e.type === 'outcome' ? [e.outcome.sessionId] : []));
    const records = [];
    for await (const r of store.auditRecords()) records.push(r);
    assert.deepEqual(records.map((r) => r.sessionId).sort(), ids.sort());
    for (const r of records) assert.equal(r.reason, `INC-3 [selector: flow=${flow} limit=7]`);
  });
});

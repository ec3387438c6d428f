/** The service in process against the emulator, on a real SQLite store in a temporary folder. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { buildApp } from '../../src/serve/app.js';
import { credentialsOf, type TenantConfig } from '../../src/serve/config.js';
import { JobManager } from '../../src/serve/jobs.js';
import type { ChunkRunner } from '../../src/serve/job-worker.js';
import { createKey } from '../../src/serve/keys.js';
import { ResetMetrics } from '../../src/sinks/prometheus.js';
import { openStore, type Store } from '../../src/store/index.js';
import { withDeadline } from './ws.js';

export interface Service {
  url: string;
  store: Store;
  emulator: Emulator;
  /** The OData key of tenant `badkey`, which the emulator refuses: a secret that must show nowhere. */
  badOdataKey: string;
  key(scopes: string[], tenants?: string[]): Promise<string>;
  call(path: string, key: string | undefined, init?: RequestInit): Promise<Response>;
}

const BAD_ODATA_KEY = 'odata-key-never-shown-5c1e';

/** A tenant of the emulator's, as a config names one: its token the emulator's; an OData key adds its analytics. */
export const emulatorTenant = (emu: Emulator, name: string, odataKey?: string): TenantConfig => ({
  name,
  transport: 'runtime-ws',
  url: emu.wsUrl,
  tenantId: name,
  bot: 'demo-bot',
  allowInsecure: false,
  credentials: credentialsOf({ token: 'dev-token', ...(odataKey === undefined ? {} : { odataKey }) }),
  ...(odataKey === undefined ? {} : { odataUrl: emu.httpUrl }),
});

export async function startService(
  t: TestContext,
  maxRunning = 2,
  sessions = 300,
  rateLimitPerMinute = 600,
  options: {
    /** Runs the jobs elsewhere (a `JobThread` on the same store file and emulator) instead of in this thread. */
    runner?: (where: { statePath: string; wsUrl: string }) => ChunkRunner;
  } = {},
): Promise<Service> {
  const emu = await startEmulator({ sessions, tenant: 'demo', botId: 'demo-bot' });
  const dir = mkdtempSync(join(tmpdir(), 'cr-serve-'));
  const tenant = (name: string, odataKey?: string): TenantConfig => emulatorTenant(emu, name, odataKey);
  // demo's analytics are the emulator's OData door; other has none; badkey's key is refused.
  const config = {
    maxRunningJobs: maxRunning,
    rateLimitPerMinute,
    tenants: new Map([
      ['demo', tenant('demo', 'dev-token')],
      ['other', tenant('other')],
      ['badkey', tenant('badkey', BAD_ODATA_KEY)],
    ]),
  };
  const statePath = join(dir, 'state.sqlite');
  const store = await openStore(statePath);
  const metrics = new ResetMetrics();
  const runner = options.runner?.({ statePath, wsUrl: emu.wsUrl });
  const jobs = new JobManager({
    runner,
    maxRunning,
    store,
    dir: join(dir, 'jobs'),
    log: pino({ level: 'silent' }),
    metrics,
    tenants: config.tenants,
  });
  const app = await buildApp({ store, jobs, config, metrics, draining: () => false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    await jobs.close();
    await app.close();
    metrics.close();
    await store.close();
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url,
    store,
    emulator: emu,
    badOdataKey: BAD_ODATA_KEY,
    key: async (scopes, tenants = []) => (await createKey(store, { scopes, tenants })).key,
    call: (path, key, init = {}) =>
      fetch(`${url}${path}`, {
        ...init,
        headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...init.headers },
      }),
  };
}

export const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
export const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `session-${i + 1}`);

/** Asserts a problem+json refusal of this status and code; resolves with its body. */
export async function problem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, status, JSON.stringify(body));
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(body['code'], code);
  assert.equal(body['status'], status);
  return body;
}

/** Follows a job over SSE to its `done` event; resolves with the last status. */
export async function followToEnd(
  service: Service,
  key: string,
  id: string,
): Promise<Record<string, unknown>> {
  const res = await service.call(`/v1/jobs/${id}/events`, key);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const text = await withDeadline(res.text(), 60_000, 'the job to finish');
  const events = text
    .split('\n\n')
    .filter((block) => block.startsWith('event:'))
    .map((block) => {
      const [event, data] = block.split('\n');
      return { event: event!.slice(7), data: JSON.parse(data!.slice(6)) as Record<string, unknown> };
    });
  assert.equal(events[events.length - 1]!.event, 'done');
  return events[events.length - 1]!.data;
}

/** Follows a job over SSE until a status satisfies `until`; resolves with that status. */
export async function followUntil(
  service: Service,
  key: string,
  id: string,
  until: (status: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  return readEvents(await service.call(`/v1/jobs/${id}/events`, key), id, (_event, status) => until(status));
}

/**
 * Reads a job's event stream until `until` holds for an event (its name, `status` or `done`, and its data);
 * resolves with that data. Fails when the stream ends first, or after `ms`.
 */
export async function readEvents<T = Record<string, unknown>>(
  res: Response,
  id: string,
  until: (event: string, data: T) => boolean,
  ms = 60_000,
): Promise<T> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let last = '';
  try {
    return await withDeadline(
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the events of ${id} ended first; the last: ${last}`);
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const [event, data] = buffer.slice(0, end).split('\n');
            buffer = buffer.slice(end + 2);
            last = data!.slice(6);
            const parsed = JSON.parse(last) as T;
            if (until(event!.slice(7), parsed)) return parsed;
          }
        }
      })(),
      ms,
      `job ${id} to get there`,
    );
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * One replica whose job runs see `jobStore` (the real store wrapped, to fail or hold what a test needs)
 * while its API reads `real`: one tenant `demo` of the emulator, one job at a time. A test may close the
 * replica itself (`manager.close()`); the test's end closes it, then the rest.
 */
export async function replicaOver(
  t: TestContext,
  options: { emulator: Emulator; real: Store; jobStore: Store; dir: string; leaseMs?: number },
): Promise<{ url: string; auth: { authorization: string }; manager: JobManager }> {
  const { emulator, real } = options;
  const tenants = new Map([['demo', emulatorTenant(emulator, 'demo')]]);
  const manager = new JobManager({
    maxRunning: 1,
    store: options.jobStore,
    dir: options.dir,
    log: pino({ level: 'silent' }),
    tenants,
    leaseMs: options.leaseMs,
  });
  const metrics = new ResetMetrics();
  const app = await buildApp({
    store: real,
    jobs: manager,
    config: { maxRunningJobs: 1, rateLimitPerMinute: 6000, tenants },
    metrics,
    draining: () => false,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    await manager.close();
    await app.close();
    metrics.close();
    await real.close();
    await emulator.close();
  });
  const key = (await createKey(real, { scopes: ['jobs:write', 'jobs:read'], tenants: [] })).key;
  return { url, auth: { authorization: `Bearer ${key}` }, manager };
}

/** The service in process against the emulator, on a real SQLite store in a temporary folder. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { buildApp } from '../../src/serve/app.js';
import { credentialsOf, type TenantConfig } from '../../src/serve/config.js';
import { JobManager } from '../../src/serve/jobs.js';
import { createKey } from '../../src/serve/keys.js';
import { ResetMetrics } from '../../src/sinks/prometheus.js';
import { openStore, type Store } from '../../src/store/index.js';

export interface Service {
  url: string;
  store: Store;
  /** The in-process engine the tenants `demo` and `other` point at. */
  emulator: Emulator;
  key(scopes: string[], tenants?: string[]): Promise<string>;
  call(path: string, key: string | undefined, init?: RequestInit): Promise<Response>;
}

export async function startService(
  t: TestContext,
  maxRunning = 2,
  sessions = 300,
  rateLimitPerMinute = 600,
): Promise<Service> {
  const emu = await startEmulator({ sessions, tenant: 'demo', botId: 'demo-bot' });
  const dir = mkdtempSync(join(tmpdir(), 'cr-serve-'));
  const tenant = (name: string): TenantConfig => ({
    name,
    transport: 'runtime-ws',
    url: emu.wsUrl,
    tenantId: name,
    bot: 'demo-bot',
    allowInsecure: false,
    credentials: credentialsOf({ token: 'dev-token' }),
  });
  const config = {
    maxRunningJobs: maxRunning,
    rateLimitPerMinute,
    tenants: new Map([
      ['demo', tenant('demo')],
      ['other', tenant('other')],
    ]),
  };
  const store = await openStore(join(dir, 'state.sqlite'));
  const metrics = new ResetMetrics();
  const jobs = new JobManager({
    maxRunning,
    store,
    dir: join(dir, 'jobs'),
    log: pino({ level: 'silent' }),
    metrics,
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

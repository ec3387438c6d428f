/**
 * What `cognigy-reset serve` runs (`serve.ts` defines its flags, and loads this only when it runs): the
 * control API and dashboard, ready when it prints one JSON line `{"event":"listening","url":...}`; SIGTERM
 * or SIGINT stop taking work, let in-flight sessions finish and close everything durable.
 */
import { type Emulator, startEmulator } from '../../emulator/index.js';
import { CognigyResetError } from '../../errors.js';
import { buildApp } from '../../serve/app.js';
import { JobThread } from '../../serve/job-thread.js';
import { JobManager } from '../../serve/jobs.js';
import { openServiceStore } from '../../serve/open-store.js';
import { ResetMetrics } from '../../sinks/prometheus.js';
import { createLogger, type LogLevel } from '../logger.js';
import {
  addDemoTenant,
  DEMO_BOT,
  DEMO_TENANT,
  readConfigSource,
  requireConfig,
  serviceConfig,
  serviceSecrets,
} from '../service-config.js';
import { resolveStore } from '../store-flags.js';
import type { ServeJobsData } from './serve-jobs.js';

export interface ServeFlags {
  host: string;
  port: number;
  store?: string;
  state?: string;
  config?: string;
  emulator: boolean;
  sessions: number;
  lease: number;
  logLevel: LogLevel;
}

export async function serve(flags: ServeFlags): Promise<void> {
  requireConfig(flags.config, flags.emulator);
  const source = readConfigSource(flags.config);
  const config = serviceConfig(source, process.env);
  const log = createLogger(flags.logLevel, () => serviceSecrets(config));
  const { location, dir } = resolveStore(flags, process.env);
  const store = await openServiceStore(location);
  // Whatever was opened is closed in reverse order, on a failure to start as on a stop.
  const closers: (() => unknown)[] = [() => store.close()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
  };
  // From the start: a signal while the job thread already runs chunks, before the server listens, stops
  // the service as one later does; a second one while it stops is said and changes nothing.
  let signalled = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (signalled) {
        log.warn({ signal }, 'stopping already: in-flight sessions finish (SIGKILL ends it at once)');
        return;
      }
      signalled = true;
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    closers.unshift(() => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    });
  });
  try {
    let emulatorUrls: { wsUrl: string; httpUrl: string } | undefined;
    if (flags.emulator) {
      const emulator: Emulator = await startEmulator({
        sessions: flags.sessions,
        tenant: DEMO_TENANT,
        botId: DEMO_BOT,
      });
      closers.push(() => emulator.close());
      emulatorUrls = { wsUrl: emulator.wsUrl, httpUrl: emulator.httpUrl };
      addDemoTenant(config, emulatorUrls);
      log.info(emulatorUrls, 'emulator listening');
    }
    // The jobs run in a thread of their own, on the same config: this one answers the API.
    const data: ServeJobsData = {
      config: { ...source, emulator: emulatorUrls },
      store: location,
      leaseMs: flags.lease * 1000,
      logLevel: flags.logLevel,
    };
    const runner = new JobThread({ entry: new URL('./serve-jobs.js', import.meta.url), data, log });
    closers.push(() => runner.close());
    await runner.ready();
    const metrics = new ResetMetrics();
    closers.push(() => metrics.close());
    metrics.addSource(() => runner.metrics());
    // Chunks of unfinished jobs, this replica's or another's, are claimed from the store: nothing to restore.
    const jobs = new JobManager({
      maxRunning: config.maxRunningJobs,
      store,
      dir,
      log,
      metrics,
      tenants: config.tenants,
      runner,
    });
    // Closed once: here on a failure to start, or before the server on a stop (below).
    closers.push(() => jobs.close());
    let draining = false;
    const app = await buildApp({ store, jobs, config, metrics, log, draining: () => draining });
    closers.push(() => app.close());
    // Stopping: no new request is ready; running chunks take no new session, in-flight ones finish, and
    // their claims are given up for another replica. Followers' streams end before the server closes.
    closers.push(() => jobs.close());
    closers.push(() => {
      draining = true;
    });
    try {
      await app.listen({ host: flags.host, port: flags.port });
    } catch (err) {
      throw new CognigyResetError('CR_ERR_OPT_LISTEN', `cannot listen on ${flags.host}:${flags.port}`, {
        field: '--port',
        cause: err,
      });
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : flags.port;
    const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
    process.stdout.write(`${JSON.stringify({ event: 'listening', url: `http://${host}:${port}` })}\n`);
    log.info({ store: store.location, tenants: [...config.tenants.keys()] }, 'service listening');
  } catch (err) {
    await closeAll();
    throw err;
  }
  await stopped;
  log.info('stopping: in-flight sessions finish');
  await closeAll();
}

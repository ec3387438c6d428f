/**
 * The thread in which `serve` runs its jobs (`JobThread`): the same config, on a store connection and a
 * logger of its own. Started by `serve` with plain data, never by hand.
 */
import { workerData } from 'node:worker_threads';
import { runJobThread, type JobThreadData } from '../../serve/job-thread.js';
import { buildJobSpec } from '../../serve/job-spec.js';
import { openServiceStore } from '../../serve/open-store.js';
import { ResetMetrics } from '../../sinks/prometheus.js';
import { createLogger, type LogLevel } from '../logger.js';
import { serviceConfig, serviceSecrets, type ServiceConfigSource } from '../service-config.js';

/** What `serve` hands its job thread. */
export interface ServeJobsData {
  config: ServiceConfigSource;
  /** What `openStore` takes. */
  store: string;
  leaseMs: number;
  logLevel: LogLevel;
}

await runJobThread(workerData as JobThreadData, async (raw) => {
  const data = raw as ServeJobsData;
  const config = serviceConfig(data.config, process.env);
  const log = createLogger(data.logLevel, () => serviceSecrets(config));
  const store = await openServiceStore(data.store);
  const metrics = new ResetMetrics();
  return {
    options: {
      store,
      maxRunning: config.maxRunningJobs,
      leaseMs: data.leaseMs,
      log,
      metrics,
      tenants: config.tenants,
      build: buildJobSpec,
    },
    metrics,
    close: async () => {
      metrics.close();
      await store.close();
    },
  };
});

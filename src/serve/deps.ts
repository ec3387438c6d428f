/** What the service's routes share: the store, the jobs, the tenants, the metrics. */
import type { Logger } from 'pino';
import type { ResetMetrics } from '../sinks/prometheus.js';
import type { Store } from '../store/index.js';
import type { ServiceConfig } from './config.js';
import type { JobManager } from './jobs.js';
import type { Principal, Scope } from './keys.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    scope?: Scope;
  }
}

export interface ServiceDeps {
  store: Store;
  jobs: JobManager;
  config: ServiceConfig;
  metrics: ResetMetrics;
  /** Where a request that failed with a bug is logged (never its headers or body). */
  log?: Logger | undefined;
  /** Set once the service stops taking work: `/readyz` answers 503. */
  draining: () => boolean;
}

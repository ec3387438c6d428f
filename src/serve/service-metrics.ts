/**
 * The service's own metrics beside the runner's: its jobs by state (from the store), how long each route
 * takes to answer, and Node's process metrics (`process_*`, `nodejs_*`: memory, CPU, the API thread's
 * event-loop delay and garbage collection), so the latency an operator watches can be told apart from
 * the wait for its thread.
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Histogram } from 'prom-client';
import type { ServiceDeps } from './deps.js';
import { JOB_STATES } from './job-model.js';

/** Seconds: a status read answers well under the first bucket; an upload of a million rows, in the last. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export function serviceMetrics(app: FastifyInstance, deps: ServiceDeps): void {
  const registers = [deps.metrics.registry];
  collectDefaultMetrics({ register: deps.metrics.registry });
  new Gauge({
    name: 'cognigy_reset_service_jobs',
    help: "The service's jobs by state.",
    labelNames: ['state'],
    registers,
    async collect() {
      const counts = await deps.jobs.counts();
      for (const state of JOB_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  const duration = new Histogram({
    name: 'cognigy_reset_http_request_duration_seconds',
    help: 'From a request read to its answer sent, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: DURATION_BUCKETS,
    registers,
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      {
        method: request.method,
        // The pattern, never the path: an id in a path would make a series of its own.
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
}

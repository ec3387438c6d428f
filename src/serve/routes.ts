/**
 * The /v1 job routes: list, get, cancel, outcomes, live events (creating one: `job-create.ts`). Each
 * reads the store, so every replica on one store answers the same.
 */
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Store } from '../store/index.js';
import type { ServiceDeps } from './deps.js';
import type { JobManager } from './jobs.js';
import { lastLines } from './job-chunks.js';
import { FINISHED, jobView, type JobState, type ServiceJob } from './job-model.js';
import { requireTenant } from './keys.js';
import { principalOf, visibleJob } from './route-helpers.js';
import { JOB, JOB_LIST, JOB_PARAMS, LIST_QUERY, OUTCOMES_QUERY, problems, SECURITY } from './schemas.js';

export function jobRoutes(deps: ServiceDeps) {
  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    app.get(
      '/v1/jobs',
      {
        config: { scope: 'jobs:read' },
        schema: {
          summary: 'List jobs, newest first',
          description:
            'Filters: tenant, state. Paging: limit, and after = the `next` of the page before. Scope jobs:read.',
          security: SECURITY,
          querystring: LIST_QUERY,
          response: { 200: JOB_LIST, ...problems(400, 401, 403) },
        },
      },
      async (request, reply) => {
        const q = request.query as { tenant?: string; state?: JobState; limit: number; after?: string };
        const principal = principalOf(request);
        if (q.tenant !== undefined) requireTenant(principal, q.tenant);
        // One more than the page: whether there is a next one.
        const jobs = await deps.jobs.list({
          tenants: q.tenant !== undefined ? [q.tenant] : principal.tenants,
          state: q.state,
          limit: q.limit + 1,
          after: q.after,
        });
        const page = jobs.slice(0, q.limit);
        const next = jobs.length > q.limit ? page[page.length - 1]!.id : null;
        return reply.send({ jobs: page.map(jobView), next });
      },
    );

    app.get(
      '/v1/jobs/:id',
      {
        config: { scope: 'jobs:read' },
        schema: {
          summary: 'A job: state, counts, rate, ETA, latency percentiles, error codes',
          security: SECURITY,
          params: JOB_PARAMS,
          response: { 200: JOB, ...problems(401, 403, 404) },
        },
      },
      async (request, reply) => reply.send(jobView(await visibleJob(deps, request))),
    );

    app.post(
      '/v1/jobs/:id/cancel',
      {
        config: { scope: 'jobs:write' },
        schema: {
          summary:
            'Cancel a job: a queued one at once; a running one takes no new session, those in flight finish',
          security: SECURITY,
          params: JOB_PARAMS,
          response: { 202: JOB, ...problems(401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        const job = await visibleJob(deps, request);
        return reply.status(202).send(jobView(await deps.jobs.cancel(job)));
      },
    );

    app.get(
      '/v1/jobs/:id/outcomes',
      {
        config: { scope: 'jobs:read' },
        schema: {
          summary: "The job's outcomes so far, as JSON Lines in the CLI's per-session shape",
          security: SECURITY,
          params: JOB_PARAMS,
          querystring: OUTCOMES_QUERY,
          produces: ['application/x-ndjson'],
          response: {
            200: {
              description: 'one outcome a line',
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            ...problems(400, 401, 403, 404),
          },
        },
      },
      async (request, reply) => {
        const job = await visibleJob(deps, request);
        const { outcome } = request.query as { outcome?: string };
        void reply.type('application/x-ndjson');
        return reply.send(Readable.from(outcomeLines(deps.store, job.id, outcome)));
      },
    );

    app.get(
      '/v1/jobs/:id/events',
      {
        config: { scope: 'jobs:read' },
        schema: {
          summary:
            'Follow a job live: Server-Sent Events `status` (the job, as GET returns it) and a last `done`',
          security: SECURITY,
          params: JOB_PARAMS,
          produces: ['text/event-stream'],
          response: {
            200: {
              description: 'an event stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...problems(401, 403, 404),
          },
        },
      },
      async (request, reply) => follow(deps.jobs, await visibleJob(deps, request), reply),
    );
    done();
  };
}

/** How often a follower gets the job's status. */
const STATUS_EVERY_MS = 500;

/** A job's outcome lines, a chunk at a time, each session's last (`lastLines`). */
async function* outcomeLines(store: Store, id: string, outcome: string | undefined): AsyncGenerator<string> {
  for await (const text of store.jobChunkOutcomes(id))
    for (const { line, parsed } of lastLines(text))
      if (outcome === undefined || parsed.outcome === outcome) yield `${line}\n`;
}

/**
 * Ended, and nothing of it runs anywhere: a cancelled job is cancelled at once, while the sessions in
 * flight on each replica finish and their outcomes are written.
 */
function ended(job: ServiceJob): boolean {
  return FINISHED.has(job.state) && (job.chunkView === null || job.chunkView.leased === 0);
}

/** The job's status every half second, as the store has it, and a last `done` once it has ended. */
function follow(jobs: JobManager, job: ServiceJob, reply: FastifyReply): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const send = (event: string, data: unknown): void => {
    if (res.writableEnded || res.destroyed) return;
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (event === 'done') res.end();
  };
  // Ends with the client, or with the service's stop.
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  const until = AbortSignal.any([gone.signal, jobs.stopping]);
  void (async () => {
    let last = job;
    send('status', jobView(last));
    while (!ended(last)) {
      try {
        await delay(STATUS_EVERY_MS, undefined, { signal: until });
      } catch {
        break;
      }
      try {
        last = (await jobs.find(job.id)) ?? last;
      } catch {
        // The store could not be read this time: the next tick tries again.
        continue;
      }
      send('status', jobView(last));
    }
    send('done', jobView(last));
  })();
}

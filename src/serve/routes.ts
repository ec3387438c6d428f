/** The /v1 job routes: list, get, cancel, outcomes, live events (creating one: `job-create.ts`). */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServiceDeps } from './deps.js';
import { outcomesPath } from './job-files.js';
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
        await deps.jobs.cancel(job);
        return reply.status(202).send(jobView(job));
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
        const path = outcomesPath(deps.jobs.dir, job.id);
        void reply.type('application/x-ndjson');
        if (!existsSync(path)) return reply.send('');
        return reply.send(Readable.from(outcomeLines(path, outcome)));
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
      async (request, reply) => follow(await visibleJob(deps, request), reply),
    );
    done();
  };
}

async function* outcomeLines(path: string, outcome: string | undefined): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === '') continue;
    if (outcome === undefined || (JSON.parse(line) as { outcome: string }).outcome === outcome)
      yield `${line}\n`;
  }
}

function follow(job: ServiceJob, reply: FastifyReply): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const send = (event: string, data: unknown): void => {
    if (res.writableEnded) return;
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (event === 'done') res.end();
  };
  send('status', jobView(job));
  if (FINISHED.has(job.state)) {
    send('done', jobView(job));
    return;
  }
  job.followers.add(send);
  res.on('close', () => job.followers.delete(send));
}

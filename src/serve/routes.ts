/** The /v1 job routes: create (ids inline or an upload), list, get, cancel, outcomes, live events. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceDeps } from './deps.js';
import { jobView, type JobState, type ServiceJob } from './job-model.js';
import { requireTenant, type Principal } from './keys.js';
import { refuse } from './problem.js';
import {
  JOB,
  JOB_BODY,
  JOB_LIST,
  JOB_PARAMS,
  LIST_QUERY,
  OUTCOMES_QUERY,
  problems,
  SECURITY,
  UPLOAD_QUERY,
} from './schemas.js';
import { requiredFieldsFor, spoolIds, uploadSource } from './targets.js';
import { uploadPath } from './job-files.js';
import { buildJobSpec, fieldsOf, type JobFields } from './job-spec.js';

/** An upload is at most this large. */
export const UPLOAD_LIMIT = 1024 * 1024 * 1024;
export const UPLOAD_TYPES = ['text/csv', 'application/x-ndjson', 'application/jsonl', 'text/plain'];

const principalOf = (request: FastifyRequest): Principal => request.principal!;

export function jobRoutes(deps: ServiceDeps) {
  function visibleJob(request: FastifyRequest<{ Params: { id: string } }>): ServiceJob {
    const job = deps.jobs.get(request.params.id);
    if (job === undefined) throw refuse('CR_ERR_API_NOT_FOUND', `no job ${request.params.id}`);
    requireTenant(principalOf(request), job.tenant);
    return job;
  }

  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    // Uploads reach the route as the request stream: spooled, never buffered whole.
    app.addContentTypeParser(UPLOAD_TYPES, (_request, payload, done) => done(null, payload));

    app.post(
      '/v1/jobs',
      {
        config: { scope: 'jobs:write' },
        schema: {
          summary: 'Create a job',
          description:
            'JSON `{"tenant","bot","sessions":[...]}`, or a CSV / JSON Lines upload (text/csv, application/x-ndjson) with the other fields in the query string. `Idempotency-Key`: the same key and body return the same job; another body is refused with 422. Scope jobs:write.',
          security: SECURITY,
          headers: {
            type: 'object',
            properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255 } },
          },
          body: {
            content: {
              'application/json': { schema: JOB_BODY },
              'text/csv': { schema: { description: 'a sessionId column, one row a session' } },
              'application/x-ndjson': { schema: { description: 'one JSON object a line, with sessionId' } },
            },
          },
          querystring: { ...UPLOAD_QUERY, required: [] },
          response: { 201: JOB, ...problems(400, 401, 403, 413, 415, 422) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const upload = isUpload(request);
        const fields = (upload ? request.query : request.body) as JobFields & { sessions?: string[] };
        if (upload && fields.tenant === undefined)
          throw refuse(
            'CR_ERR_OPT_MISSING',
            'tenant: an upload names its tenant in the query string',
            'tenant',
          );
        requireTenant(principal, fields.tenant);
        const tenant = deps.config.tenants.get(fields.tenant);
        if (tenant === undefined)
          throw refuse(
            'CR_ERR_OPT_INVALID',
            `tenant: ${JSON.stringify(fields.tenant)} is not configured`,
            'tenant',
          );
        const id = deps.jobs.newId();
        const actor = `key:${principal.keyId}`;
        const spec = buildJobSpec(tenant, fields, id, actor);
        const required = await requiredFieldsFor(spec);
        const key = request.headers['idempotency-key'];
        const slot = typeof key === 'string' ? `${principal.keyId}\n${key}` : undefined;
        const replay = (fingerprint: string): ServiceJob | undefined =>
          slot === undefined ? undefined : deps.jobs.replay(slot, fingerprint);
        const path = uploadPath(deps.jobs.dir, id);
        let fingerprint: string;
        let total: number;
        let earlier: ServiceJob | undefined;
        if (upload) {
          try {
            const spooled = await uploadSource(request.body as Readable, path, UPLOAD_LIMIT, required);
            fingerprint = sha256(JSON.stringify([request.headers['content-type'], fields, spooled.sha256]));
            total = spooled.total;
            earlier = replay(fingerprint);
          } catch (err) {
            await rm(path, { force: true });
            throw err;
          }
          if (earlier !== undefined) await rm(path, { force: true });
        } else {
          const sessions = (fields as { sessions: string[] }).sessions;
          fingerprint = sha256(JSON.stringify(fields));
          earlier = replay(fingerprint);
          total = sessions.length;
          if (earlier === undefined) await spoolIds(sessions, path, required);
        }
        if (earlier === undefined && total === 0) {
          await rm(path, { force: true });
          throw refuse('CR_ERR_OPT_MISSING', 'the upload holds no session', 'body');
        }
        if (earlier !== undefined)
          return reply.status(201).header('idempotent-replayed', 'true').send(jobView(earlier));
        const job = deps.jobs.add({
          id,
          fields: fieldsOf(fields),
          actor,
          tenant,
          spec,
          total,
          required,
          idempotency: slot === undefined ? undefined : { slot, fingerprint },
        });
        return reply.status(201).header('location', `/v1/jobs/${job.id}`).send(jobView(job));
      },
    );

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
      (request, reply) => {
        const q = request.query as { tenant?: string; state?: JobState; limit: number; after?: string };
        const principal = principalOf(request);
        if (q.tenant !== undefined) requireTenant(principal, q.tenant);
        let jobs = deps.jobs.list({ tenants: principal.tenants, tenant: q.tenant, state: q.state });
        if (q.after !== undefined) {
          const at = jobs.findIndex((job) => job.id === q.after);
          jobs = at === -1 ? [] : jobs.slice(at + 1);
        }
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
      (request, reply) =>
        reply.send(jobView(visibleJob(request as FastifyRequest<{ Params: { id: string } }>))),
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
        const job = visibleJob(request as FastifyRequest<{ Params: { id: string } }>);
        deps.jobs.cancel(job);
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
        const job = visibleJob(request as FastifyRequest<{ Params: { id: string } }>);
        const { outcome } = request.query as { outcome?: string };
        void reply.type('application/x-ndjson');
        if (!existsSync(job.outcomesPath)) return reply.send('');
        return reply.send(Readable.from(outcomeLines(job.outcomesPath, outcome)));
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
      async (request, reply) =>
        follow(visibleJob(request as FastifyRequest<{ Params: { id: string } }>), reply),
    );
    done();
  };
}

export function isUpload(request: FastifyRequest): boolean {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return UPLOAD_TYPES.includes(type);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
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
  if (job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled') {
    send('done', jobView(job));
    return;
  }
  job.followers.add(send);
  res.on('close', () => job.followers.delete(send));
}

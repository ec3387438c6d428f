/**
 * `POST /v1/jobs`: a job from ids given inline, a selector, or an upload (CSV / JSON Lines streamed to a
 * file). Its sessions are spooled and checked, then written to the store as chunks (which any replica may
 * claim), and the job recorded there, before `201`; with an Idempotency-Key, the same key and request
 * return the first job.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ServiceJobIdempotency } from '../store/index.js';
import type { ServiceDeps } from './deps.js';
import { uploadPath } from './job-files.js';
import { jobView } from './job-model.js';
import { checkConfirmed, spoolSelection, type Confirmation } from './job-selection.js';
import { buildJobSpec, fieldsOf, type JobFields } from './job-spec.js';
import { requireTenant } from './keys.js';
import { refuse } from './problem.js';
import {
  acceptUploads,
  actorOf,
  isUpload,
  principalOf,
  requestFields,
  requireOneSource,
} from './route-helpers.js';
import { JOB, JOB_BODY, problems, SECURITY, UPLOAD_QUERY } from './schemas.js';
import { requiredFieldsFor, spoolIds, uploadSource } from './targets.js';
import { canonicalJson } from '../util/canonical-json.js';

/** An upload is at most this large. */
export const UPLOAD_LIMIT = 1024 * 1024 * 1024;

type JobBody = JobFields & Confirmation & { sessions?: string[] };

export function jobCreateRoute(deps: ServiceDeps) {
  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    acceptUploads(app);

    app.post(
      '/v1/jobs',
      {
        config: { scope: 'jobs:write' },
        schema: {
          summary: 'Create a job',
          description:
            'JSON `{"tenant","bot","sessions":[...]}` or `{"tenant","bot","selector":{"flow":...},"expect":N}`, or a CSV / JSON Lines upload (text/csv, application/x-ndjson) with the other fields in the query string. A selector is listed from the tenant\'s OData data before the job is made: it runs only with `expect` (the count ± `expectMargin` per cent) or `confirm: true`, else 422 with the `count` (a dry run needs neither). `Idempotency-Key`: the same key and body return the same job; another body is refused with 422. Scope jobs:write.',
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
          response: { 201: JOB, ...problems(400, 401, 403, 413, 415, 422, 502) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const upload = isUpload(request);
        const body = requestFields<JobBody>(request);
        requireOneSource(body, upload);
        requireTenant(principal, body.tenant);
        const tenant = deps.config.tenants.get(body.tenant);
        if (tenant === undefined)
          throw refuse(
            'CR_ERR_OPT_INVALID',
            `tenant: ${JSON.stringify(body.tenant)} is not configured`,
            'tenant',
          );
        const id = deps.jobs.newId();
        const actor = actorOf(request);
        const spec = buildJobSpec(tenant, body, id, actor);
        const required = await requiredFieldsFor(spec);
        const header = request.headers['idempotency-key'];
        const idempotency = (requestHash: string): ServiceJobIdempotency | null =>
          typeof header === 'string' ? { keyId: principal.keyId, key: header, requestHash } : null;
        const path = uploadPath(deps.jobs.dir, id);
        let idem: ServiceJobIdempotency | null;
        let total: number;
        let written: { chunks: number; duplicates: number };
        try {
          if (upload) {
            const spooled = await uploadSource(request.body as Readable, path, UPLOAD_LIMIT, required);
            idem = idempotency(
              sha256(canonicalJson([request.headers['content-type'], body, spooled.sha256])),
            );
            total = spooled.total;
          } else {
            // The same body with its fields in another order is the same request.
            idem = idempotency(sha256(canonicalJson(body)));
            total = body.sessions?.length ?? 0;
          }
          // The same request again is answered before its sessions are listed a second time.
          const earlier = idem === null ? undefined : await deps.jobs.replay(idem);
          if (earlier !== undefined)
            return await reply.status(201).header('idempotent-replayed', 'true').send(jobView(earlier));
          if (body.sessions !== undefined) await spoolIds(body.sessions, path, required);
          else if (body.selector !== undefined) {
            const selection = await spoolSelection(spec, tenant.credentials, path, deps.log);
            total = selection.count;
            if (!spec.dryRun) checkConfirmed(selection.count, selection.description, body);
          }
          if (total === 0)
            throw refuse(
              'CR_ERR_OPT_MISSING',
              body.selector === undefined ? 'the upload holds no session' : 'the selector matches no session',
              body.selector === undefined ? 'body' : 'selector',
            );
          // Into the store before the job is: a replica claims its chunks as soon as the job exists.
          written = await deps.jobs.writeChunks(id, { path, total, required });
        } finally {
          // The chunks hold the sessions now: the spool is not read again.
          await rm(path, { force: true });
        }
        const { job, replayed } = await deps.jobs.add({
          id,
          fields: fieldsOf(body),
          actor,
          bot: spec.botId,
          total,
          required,
          idempotency: idem,
          ...written,
        });
        // Another request with the same key won meanwhile (the chunks written for this one are never claimed).
        if (replayed) return reply.status(201).header('idempotent-replayed', 'true').send(jobView(job));
        return reply.status(201).header('location', `/v1/jobs/${job.id}`).send(jobView(job));
      },
    );
    done();
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

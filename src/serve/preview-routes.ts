/**
 * `POST /v1/jobs/preview`: what `POST /v1/jobs` would do with the same request, and nothing sent. The
 * sessions are checked as a job's are (spooled to a temporary file, every row checked, then removed);
 * the answer is their count, what each reset clears, and the first directives as the engine would get
 * them. The transport is built as a dry run's is: with no credential, dialling nothing.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { LAYERS, planReset } from '../model/plan.js';
import type { BulkTarget } from '../reset/bulk.js';
import { createTransport } from '../transports/create.js';
import type { ServiceDeps } from './deps.js';
import { buildJobSpec, type JobFields } from './job-spec.js';
import { requireTenant } from './keys.js';
import { refuse } from './problem.js';
import { UPLOAD_LIMIT } from './job-create.js';
import {
  acceptUploads,
  actorOf,
  isUpload,
  principalOf,
  requestFields,
  requireOneSource,
} from './route-helpers.js';
import { spoolSelection } from './job-selection.js';
import { JOB_BODY, problems, SECURITY, UPLOAD_QUERY } from './schemas.js';
import { fileSource, spoolIds, uploadSource } from './targets.js';

/** Directives shown at most. */
const FIRST_MAX = 100;

const PREVIEW_QUERY = {
  ...UPLOAD_QUERY,
  required: [],
  properties: {
    ...UPLOAD_QUERY.properties,
    first: { type: 'integer', minimum: 0, maximum: FIRST_MAX, default: 5, description: 'directives shown' },
  },
} as const;

const layerList = { type: 'array', items: { enum: LAYERS } };

const PREVIEW = {
  type: 'object',
  required: ['tenant', 'bot', 'transport', 'count', 'plan', 'directives', 'sent'],
  properties: {
    tenant: { type: 'string' },
    bot: { type: 'string' },
    transport: { type: 'string' },
    count: { type: 'integer', minimum: 0, description: 'sessions the job would take (rows, duplicates too)' },
    dryRun: { type: 'boolean' },
    maxDurationSec: { type: 'integer' },
    plan: {
      type: 'object',
      description: "what each reset clears: the directive's state matrix and context wipe, and by layer",
      properties: {
        stateClearMatrix: { type: 'object', additionalProperties: { type: 'string' } },
        contextWipeDirective: { type: 'object', additionalProperties: { type: 'boolean' } },
        cleared: layerList,
        kept: { ...layerList, description: 'layers the request asked to keep' },
        notClearable: { ...layerList, description: 'layers this transport cannot clear' },
      },
    },
    directives: {
      type: 'array',
      description: 'the first sessions, each with the exact text the engine would get (no token in it)',
      items: {
        type: 'object',
        properties: { sessionId: { type: 'string' }, frame: { type: 'string' } },
      },
    },
    sent: { const: false, description: 'nothing was sent' },
  },
} as const;

export function previewRoutes(deps: ServiceDeps) {
  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    acceptUploads(app);
    app.post(
      '/v1/jobs/preview',
      {
        config: { scope: 'jobs:read' },
        schema: {
          summary: 'Preview a job: its count, what each reset clears, the first directives; nothing is sent',
          description:
            'The same body as `POST /v1/jobs` (JSON, or a CSV / JSON Lines upload with the fields in the query string), checked as a job is; `first` directives are shown. Scope jobs:read: it changes nothing and sends nothing, so a reviewer without jobs:write can check a request before someone starts it.',
          security: SECURITY,
          body: {
            content: {
              'application/json': { schema: JOB_BODY },
              'text/csv': { schema: { description: 'a sessionId column, one row a session' } },
              'application/x-ndjson': { schema: { description: 'one JSON object a line, with sessionId' } },
            },
          },
          querystring: PREVIEW_QUERY,
          response: { 200: PREVIEW, ...problems(400, 401, 403, 413, 415) },
        },
      },
      async (request, reply) => {
        const upload = isUpload(request);
        const query = request.query as JobFields & { first: number };
        const fields = requestFields<JobFields & { sessions?: string[]; selector?: unknown }>(request);
        requireOneSource(fields, upload);
        requireTenant(principalOf(request), fields.tenant);
        const tenant = deps.config.tenants.get(fields.tenant);
        if (tenant === undefined)
          throw refuse(
            'CR_ERR_OPT_INVALID',
            `tenant: ${JSON.stringify(fields.tenant)} is not configured`,
            'tenant',
          );
        const spec = buildJobSpec(tenant, fields, 'preview', actorOf(request));
        const transport = createTransport(spec, {}, { dryRun: true });
        try {
          const plan = planReset(spec.plan, transport.capabilities);
          const required = transport.requiredFields(plan);
          const path = join(deps.jobs.dir, `preview_${randomUUID()}.upload`);
          let count: number;
          let first: BulkTarget[];
          try {
            if (upload)
              count = (await uploadSource(request.body as Readable, path, UPLOAD_LIMIT, required)).total;
            else if (fields.sessions !== undefined) {
              await spoolIds(fields.sessions, path, required);
              count = fields.sessions.length;
            } else count = (await spoolSelection(spec, tenant.credentials, path, deps.log)).count;
            if (count === 0)
              throw fields.selector === undefined
                ? refuse('CR_ERR_OPT_MISSING', 'the upload holds no session', 'body')
                : refuse('CR_ERR_OPT_MISSING', 'the selector matches no session', 'selector');
            first = await firstTargets(fileSource(path, count, required), query.first);
          } finally {
            await rm(path, { force: true });
          }
          const options = { requestId: undefined, maxDurationSec: spec.maxDurationSec };
          return reply.send({
            tenant: tenant.name,
            bot: spec.botId,
            transport: transport.name,
            count,
            dryRun: spec.dryRun,
            maxDurationSec: spec.maxDurationSec,
            plan: {
              stateClearMatrix: plan.stateClearMatrix,
              contextWipeDirective: plan.contextWipeDirective,
              cleared: plan.cleared,
              kept: plan.kept,
              notClearable: plan.notClearable,
            },
            directives: first.map((target) => ({
              sessionId: target.sessionId,
              frame: transport.prepare(target, plan, options).text,
            })),
            sent: false,
          });
        } finally {
          await transport.close();
        }
      },
    );
    done();
  };
}

async function firstTargets(source: ReturnType<typeof fileSource>, n: number): Promise<BulkTarget[]> {
  const first: BulkTarget[] = [];
  if (n === 0) return first;
  const stop = new AbortController();
  try {
    for await (const batch of source.batches(stop.signal)) {
      first.push(...batch.slice(0, n - first.length));
      if (first.length >= n) break;
    }
  } finally {
    stop.abort();
  }
  return first;
}

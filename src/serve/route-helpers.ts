/** What the /v1 routes share: who asks, and a job they may see (404 when none, 403 another tenant's). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServiceDeps } from './deps.js';
import type { ServiceJob } from './job-model.js';
import { requireTenant, type Principal } from './keys.js';
import { refuse } from './problem.js';
import { PLAN_FLAGS } from './schemas.js';

const UPLOAD_TYPES = ['text/csv', 'application/x-ndjson', 'application/jsonl', 'text/plain'];

/** Uploads reach the plugin's routes as the request stream: spooled, never buffered whole. */
export function acceptUploads(app: FastifyInstance): void {
  app.addContentTypeParser(UPLOAD_TYPES, (_request, payload, done) => done(null, payload));
}

/** A body of sessions to stream (CSV, JSON Lines, one id a line), not JSON. */
export function isUpload(request: FastifyRequest): boolean {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return UPLOAD_TYPES.includes(type);
}

/**
 * A job's fields: a JSON body's, or an upload's query string, whose plan flags are gathered into `plan`
 * as a body has them. An upload must name its tenant.
 */
export function requestFields<T extends { tenant?: string }>(request: FastifyRequest): T {
  if (!isUpload(request)) return request.body as T;
  const query = { ...(request.query as Record<string, unknown>) };
  const plan: Record<string, unknown> = {};
  for (const flag of PLAN_FLAGS)
    if (flag in query) {
      plan[flag] = query[flag];
      delete query[flag];
    }
  if (query['tenant'] === undefined)
    throw refuse('CR_ERR_OPT_MISSING', 'tenant: an upload names its tenant in the query string', 'tenant');
  return (Object.keys(plan).length === 0 ? query : { ...query, plan }) as T;
}

/** A JSON body names its sessions inline or by a selector, one of the two; an upload is its sessions. */
export function requireOneSource(body: { sessions?: unknown; selector?: unknown }, upload: boolean): void {
  if (!upload && (body.sessions === undefined) === (body.selector === undefined))
    throw refuse(
      body.sessions === undefined ? 'CR_ERR_OPT_MISSING' : 'CR_ERR_OPT_INVALID',
      'give the sessions as `sessions` or as a `selector`, one of the two',
      'sessions',
    );
}

/** Who a request's key is; a route that reached here without one fails closed. */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null)
    throw refuse('CR_ERR_API_UNAUTHORIZED', 'this path needs Authorization: Bearer <key>');
  return request.principal;
}

/** The job a request's `:id` names, when its key may see its tenant. */
export async function visibleJob(deps: ServiceDeps, request: FastifyRequest): Promise<ServiceJob> {
  const { id } = request.params as { id: string };
  const job = await deps.jobs.find(id);
  if (job === undefined) throw refuse('CR_ERR_API_NOT_FOUND', `no job ${id}`);
  requireTenant(principalOf(request), job.tenant);
  return job;
}

/** `key:<id>`: who a request acts as, in jobs and audit records. */
export const actorOf = (request: FastifyRequest): string => `key:${principalOf(request).keyId}`;

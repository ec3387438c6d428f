/** What the /v1 routes share: who asks, and a job they may see (404 when none, 403 another tenant's). */
import type { FastifyRequest } from 'fastify';
import type { ServiceDeps } from './deps.js';
import type { ServiceJob } from './job-model.js';
import { requireTenant, type Principal } from './keys.js';
import { refuse } from './problem.js';

export const principalOf = (request: FastifyRequest): Principal => request.principal!;

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

/**
 * The /v1/audit routes (scope audit:read): the audit records as JSON Lines, streamed and filtered, and a
 * verification of the whole chain. A key bound to tenants sees only those tenants' records, and cannot
 * verify the whole chain (that reads every tenant's records).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditFilter } from '../store/index.js';
import type { ServiceDeps } from './deps.js';
import { requireTenant } from './keys.js';
import { refuse } from './problem.js';
import { principalOf } from './route-helpers.js';
import { problems, SECURITY } from './schemas.js';

const text = { type: 'string', minLength: 1, maxLength: 256 };
const time = { type: 'string', format: 'date-time' };

const RECORDS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tenant: { ...text, description: 'a tenant of the service config' },
    jobId: text,
    sessionId: text,
    outcome: { enum: ['reset', 'failed', 'skipped'] },
    since: { ...time, description: 'inclusive' },
    until: { ...time, description: 'exclusive' },
  },
} as const;

const VERIFY = {
  type: 'object',
  required: ['ok', 'records'],
  properties: {
    ok: { type: 'boolean' },
    records: { type: 'integer' },
    headSeq: { type: 'integer' },
    headHash: { type: 'string' },
    problem: {
      type: ['object', 'null'],
      properties: {
        seq: { type: 'integer' },
        sessionId: { type: ['string', 'null'] },
        problem: { type: 'string' },
      },
    },
  },
} as const;

export function auditRoutes(deps: ServiceDeps) {
  /** The engine tenant ids a request may see: undefined for every tenant. */
  function engineTenants(request: FastifyRequest, tenant: string | undefined): Set<string> | undefined {
    const principal = principalOf(request);
    if (tenant !== undefined) requireTenant(principal, tenant);
    const names = tenant !== undefined ? [tenant] : principal.tenants;
    if (names.length === 0) return undefined;
    return new Set(names.map((name) => deps.config.tenants.get(name)?.tenantId ?? name));
  }

  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    app.get(
      '/v1/audit/records',
      {
        config: { scope: 'audit:read' },
        schema: {
          summary: 'Audit records as JSON Lines, in chain order, streamed',
          description:
            'Filters: tenant, jobId, sessionId, outcome, since, until. A key bound to tenants gets only theirs. Scope audit:read.',
          security: SECURITY,
          querystring: RECORDS_QUERY,
          produces: ['application/x-ndjson'],
          response: {
            200: {
              description: 'one audit record a line',
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            ...problems(400, 401, 403),
          },
        },
      },
      (request, reply) => {
        const q = request.query as AuditFilter & { tenant?: string };
        const tenants = engineTenants(request, q.tenant);
        const filter: AuditFilter = {
          jobId: q.jobId,
          sessionId: q.sessionId,
          outcome: q.outcome,
          since: q.since,
          until: q.until,
        };
        const lines = async function* (): AsyncGenerator<string> {
          for await (const record of deps.store.auditRecords(filter)) {
            if (tenants === undefined || tenants.has(record.tenant)) yield `${JSON.stringify(record)}\n`;
          }
        };
        return reply.type('application/x-ndjson').send(Readable.from(lines()));
      },
    );

    app.get(
      '/v1/audit/verify',
      {
        config: { scope: 'audit:read' },
        schema: {
          summary: 'Verify the whole audit chain from genesis',
          description: 'Needs a key bound to no tenant: it reads every record. Scope audit:read.',
          security: SECURITY,
          response: { 200: VERIFY, ...problems(401, 403) },
        },
      },
      async (request) => {
        if (principalOf(request).tenants.length > 0)
          throw refuse('CR_ERR_API_FORBIDDEN', 'verifying the whole chain needs a key bound to no tenant');
        const result = await deps.store.verifyAudit();
        return {
          ok: result.ok,
          records: result.records,
          headSeq: result.headSeq,
          headHash: result.headHash,
          problem: result.problem,
        };
      },
    );
    done();
  };
}

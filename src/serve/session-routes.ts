/**
 * `POST /v1/sessions/{sessionId}/reset`: one session reset while the request waits, through the same
 * runner as a job (validated, verified, paced with the tenant's other jobs, audited with the key's id as
 * the actor); the answer is the outcome in the CLI's per-session shape.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { isErrorCode } from '../errors.js';
import { outcomeLine, type ResetOutcome } from '../reset/outcome.js';
import { startJob } from '../runner/start-job.js';
import type { SessionTarget, TargetField } from '../transports/transport.js';
import type { ServiceDeps } from './deps.js';
import { buildJobSpec, type JobFields } from './job-spec.js';
import { requireTenant } from './keys.js';
import { problems, SECURITY, SESSION_RESET_BODY } from './schemas.js';
import { refuse } from './problem.js';
import { actorOf, principalOf } from './route-helpers.js';
import { apiIdProblem, requiredFieldsFor } from './targets.js';

const text = { type: 'string' };

/** §3's per-session line, and what a transport that cannot clear every layer adds to it. */
const OUTCOME = {
  type: 'object',
  required: ['sessionId', 'outcome', 'verified', 'latencyMs', 'attempts', 'error'],
  properties: {
    sessionId: text,
    outcome: { enum: ['reset', 'failed', 'skipped'] },
    verified: { type: 'boolean' },
    latencyMs: { type: 'number' },
    attempts: { type: 'integer' },
    error: {
      type: ['object', 'null'],
      properties: { code: text, message: text },
    },
    audited: { type: 'boolean' },
    cleared: { type: 'array', items: text },
    notCleared: { type: 'array', items: text },
    notVerified: { type: 'array', items: text },
  },
} as const;

const PARAMS = {
  type: 'object',
  required: ['sessionId'],
  properties: { sessionId: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

type Body = JobFields & Partial<Record<TargetField, string>>;

export function sessionRoutes(deps: ServiceDeps) {
  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    app.post(
      '/v1/sessions/:sessionId/reset',
      {
        config: { scope: 'jobs:write' },
        schema: {
          summary: 'Reset one session now, and answer with its outcome',
          description:
            "The outcome in the CLI's per-session shape (`200` whether it was reset or failed: read `outcome`). Validated, verified and audited as a job's are, with `key:<id>` as the actor and no job id. `userId`, `flowReferenceId`, `entrypoint`: for a transport that needs them. Scope jobs:write.",
          security: SECURITY,
          params: PARAMS,
          body: SESSION_RESET_BODY,
          response: { 200: OUTCOME, ...problems(400, 401, 403, 502) },
        },
      },
      async (request) => {
        const { sessionId } = request.params as { sessionId: string };
        const body = request.body as Body;
        requireTenant(principalOf(request), body.tenant);
        const tenant = deps.config.tenants.get(body.tenant);
        if (tenant === undefined)
          throw refuse(
            'CR_ERR_OPT_INVALID',
            `tenant: ${JSON.stringify(body.tenant)} is not configured`,
            'tenant',
          );
        const problem = apiIdProblem(sessionId);
        if (problem !== undefined)
          throw refuse('CR_ERR_OPT_SESSION_ID', `sessionId: ${problem}`, 'sessionId');
        const spec = buildJobSpec(tenant, body, undefined, actorOf(request));
        const target: SessionTarget = { sessionId };
        for (const field of await requiredFieldsFor(spec)) {
          const value = body[field];
          if (value === undefined)
            throw refuse('CR_ERR_OPT_MISSING', `${field}: this tenant's transport needs it`, field);
          target[field] = value;
        }
        const handle = startJob(
          spec,
          { total: 1, batches: () => [[{ ...target, index: 0 }]] },
          {
            credentials: tenant.credentials,
            log: (deps.log ?? silent).child({ sessionId }),
            store: deps.store,
            metrics: deps.metrics,
          },
        );
        let outcome: ResetOutcome | undefined;
        for await (const event of handle.events()) if (event.type === 'outcome') outcome = event.outcome;
        const summary = await handle.done;
        if (outcome === undefined) {
          const fatal = summary.fatal;
          if (fatal !== null)
            throw refuse(isErrorCode(fatal.code) ? fatal.code : 'CR_ERR_API_INTERNAL', fatal.message);
          throw refuse('CR_ERR_API_INTERNAL', 'the reset ended without an outcome');
        }
        return outcomeLine(outcome);
      },
    );
    done();
  };
}

/** Where a service built without a logger (tests) logs. */
const silent = pino({ level: 'silent' });

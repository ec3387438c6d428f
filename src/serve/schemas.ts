/**
 * The routes' JSON Schemas, written once: Fastify validates requests and serialises responses with them,
 * and `@fastify/swagger` turns them into the OpenAPI 3.1 document. The job fields reuse the job spec's.
 */
import { JOB_SPEC_SCHEMA, REASON_MAX, SELECTOR_LIMIT_MAX } from '../runner/spec.js';
import { DEFAULT_EXPECT_MARGIN } from './job-selection.js';
import { PROBLEM_SCHEMA, PROBLEM_TYPE } from './problem.js';
import { JOB_STATES } from './job-model.js';
import { SCOPES } from './keys.js';

/** Sessions a JSON body may name inline; more go as an upload. */
export const INLINE_SESSIONS_MAX = 100_000;

const problemResponse = {
  description: 'a problem document (RFC 9457) with a CR_ERR_* code',
  content: { [PROBLEM_TYPE]: { schema: PROBLEM_SCHEMA } },
};

/** Error responses, each a problem document; every /v1 route may also answer 429 (the key's rate limit). */
export function problems(...statuses: number[]): Record<number, object> {
  return Object.fromEntries([...new Set([...statuses, 429])].map((status) => [status, problemResponse]));
}

const spec = JOB_SPEC_SCHEMA.properties;
const name = { type: 'string', minLength: 1, maxLength: 256 };

/** What a job takes besides its sessions, in a JSON body or an upload's query string. */
const jobFields = {
  tenant: { ...name, description: 'a tenant of the service config' },
  bot: { ...name, description: "the bot; default: the tenant's configured bot" },
  reason: { type: 'string', maxLength: REASON_MAX, description: 'recorded in each audit record' },
  maxDurationSec: { type: 'integer', description: "the directive's maxDurationSec" },
  dryRun: { type: 'boolean', default: false, description: 'compile and check, send nothing' },
};

const ref = { type: 'string', minLength: 1, maxLength: 256 };

/** A selector in a request: where its data is read is the tenant's (`odataUrl` in the config). */
export const SELECTOR = {
  type: 'object',
  additionalProperties: false,
  description:
    'exactly one of flow, endpoint, node (docs/selectors.md); since inclusive, until exclusive (RFC 3339)',
  properties: {
    flow: { ...ref, description: 'sessions with a step of this Flow (its reference id) in the window' },
    endpoint: { ...ref, description: 'sessions started on this endpoint (its reference id) in the window' },
    node: { ...ref, description: 'sessions whose last recorded step is this node, in the window' },
    since: { type: 'string', maxLength: 64 },
    until: { type: 'string', maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: SELECTOR_LIMIT_MAX },
  },
} as const;

export const JOB_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant'],
  description: 'the sessions as `sessions` (ids) or as a `selector`, not both',
  properties: {
    ...jobFields,
    sessions: {
      type: 'array',
      minItems: 1,
      maxItems: INLINE_SESSIONS_MAX,
      items: { type: 'string', minLength: 1, maxLength: 256 },
    },
    selector: SELECTOR,
    expect: {
      type: 'integer',
      minimum: 0,
      description: 'with a selector: run only if it matches this many sessions (± expectMargin)',
    },
    expectMargin: {
      type: 'number',
      minimum: 0,
      maximum: 100,
      description: `per cent of expect the count may be off by (default ${DEFAULT_EXPECT_MARGIN})`,
    },
    confirm: {
      type: 'boolean',
      description: 'with a selector: run whatever the count (else expect is needed, or dryRun)',
    },
    plan: spec.plan,
  },
} as const;

/** One session's reset: the job's fields, and what some transports need to address the session. */
export const SESSION_RESET_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant'],
  properties: {
    ...jobFields,
    plan: spec.plan,
    userId: { ...ref, description: "cognigy-rest: the session's user" },
    flowReferenceId: { ...ref, description: "cognigy-rest: the session's Flow" },
    entrypoint: { ...ref, description: "cognigy-rest: the session's endpoint's entrypoint" },
  },
} as const;

/** The plan's flags: in a JSON body as `plan`, in an upload's query string each on its own. */
export const PLAN_FLAGS = ['keepHistory', 'keepVariables', 'keepNlu', 'flowOnly'] as const;

export const UPLOAD_QUERY = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant'],
  properties: {
    ...jobFields,
    ...Object.fromEntries(
      PLAN_FLAGS.map((flag) => [
        flag,
        { type: 'boolean', description: `the plan's ${flag} (a JSON body's plan.${flag})` },
      ]),
    ),
  },
} as const;

const count = { type: 'integer', minimum: 0 };
const nullableNumber = { type: ['number', 'null'] };

export const JOB = {
  type: 'object',
  required: ['id', 'state', 'counts'],
  properties: {
    id: { type: 'string' },
    state: { enum: JOB_STATES },
    tenant: { type: 'string' },
    bot: { type: 'string' },
    actor: { type: 'string', description: 'key:<id> of the key that created the job' },
    dryRun: { type: 'boolean' },
    reason: { type: ['string', 'null'] },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
    counts: {
      type: 'object',
      required: ['total', 'reset', 'verified', 'failed', 'skipped'],
      properties: { total: count, reset: count, verified: count, failed: count, skipped: count },
    },
    done: count,
    rate: { type: 'number', description: 'sessions finished per second, lately' },
    etaSec: nullableNumber,
    pace: { ...nullableNumber, description: "the flow controller's SEND frames per second" },
    flowController: {
      type: ['string', 'null'],
      description: "the flow controller the job's last run drew on: jobs on one tenant share one",
    },
    selector: { ...SELECTOR, type: ['object', 'null'], description: 'the selector that chose the sessions' },
    latencyMs: {
      type: 'object',
      properties: { p50: { type: 'number' }, p95: { type: 'number' }, p99: { type: 'number' } },
    },
    errors: { type: 'object', additionalProperties: count, description: 'failed sessions by error code' },
    error: {
      type: ['object', 'null'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    cancelRequested: { type: 'boolean' },
    recent: {
      type: ['object', 'null'],
      description: 'while it runs: the sessions finished over the last second, and their latency',
      properties: {
        sessions: count,
        latencyMs: {
          type: 'object',
          properties: { p50: { type: 'number' }, p95: { type: 'number' }, p99: { type: 'number' } },
        },
      },
    },
    flowControl: {
      type: ['object', 'null'],
      description:
        "while it runs: the flow controller's mode, rate, ceiling and refusals; the in-flight bound",
      properties: {
        mode: { enum: ['adaptive', 'fixed', 'none'] },
        rate: nullableNumber,
        ceiling: nullableNumber,
        refused: count,
        cuts: count,
        inFlightLimit: count,
      },
    },
    chunks: {
      type: ['object', 'null'],
      description:
        "the job's sessions as chunks, claimed by the service's replicas: how many, how many are done, how many are claimed now and by which replicas (host/pid/id)",
      properties: {
        total: count,
        done: count,
        leased: count,
        owners: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

export const JOB_LIST = {
  type: 'object',
  required: ['jobs', 'next'],
  properties: {
    jobs: { type: 'array', items: JOB },
    next: { type: ['string', 'null'], description: 'pass as `after` for the next page' },
  },
} as const;

export const LIST_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tenant: name,
    state: { enum: JOB_STATES },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    after: { type: 'string', maxLength: 128 },
  },
} as const;

export const JOB_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;

export const OUTCOMES_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { outcome: { enum: ['reset', 'failed', 'skipped'] } },
} as const;

export const SECURITY = [{ apiKey: [] }];
export const SCOPE_NOTE = `Scopes: ${SCOPES.join(', ')}.`;

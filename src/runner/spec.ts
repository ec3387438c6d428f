/**
 * The job spec's schema, and its one validation: `jobSpec(value)` fills defaults, checks every field and
 * what the engine accepts, and returns a `JobSpec`. An error names the spec field (`pipeline.concurrency`)
 * in its `field`, and its message starts with it; the CLI maps a field to its flag.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { CognigyResetError } from '../errors.js';
import { checkResetDirective, MAX_DURATION_MAX_SEC, MAX_DURATION_MIN_SEC } from '../protocol/index.js';
import { DEFAULT_MAX_UNREACHABLE } from '../reset/bulk.js';
import { DEFAULT_RETRY_POLICY } from '../model/retry-policy.js';
import { DEFAULT_WEBHOOK_BATCH } from '../sinks/webhook.js';
import { TRANSPORT_NAMES } from '../transports/create.js';
import { checkSelector } from '../select/selector.js';
import { checkedUrl } from '../util/loopback.js';
import { printableProblem } from '../util/printable.js';
import type { JobSpec } from './types.js';

export const JOB_ID_MAX = 128;
export const REASON_MAX = 500;
const IDENTIFIER_MAX = 256;

const int = (minimum: number, maximum: number, value: number): object => ({
  type: 'integer',
  minimum,
  maximum,
  default: value,
});
const positive = (maximum: number, value?: number): object => ({
  type: 'number',
  exclusiveMinimum: 0,
  maximum,
  ...(value === undefined ? {} : { default: value }),
});
const flag = { type: 'boolean', default: false };
/** The shortest deadline of an acknowledgement, in seconds. */
export const ACK_TIMEOUT_MIN_SEC = 0.1;
const selectorRef = { type: 'string', minLength: 1, maxLength: IDENTIFIER_MAX };
/** A selector job takes at most this many sessions. */
export const SELECTOR_LIMIT_MAX = 100_000_000;

/** The JSON Schema of a job spec: the service's routes use it as it is. */
export const JOB_SPEC_SCHEMA = {
  $id: 'cognigy-reset/job-spec',
  type: 'object',
  additionalProperties: false,
  required: ['transport', 'url', 'actor'],
  properties: {
    transport: { enum: TRANSPORT_NAMES },
    url: { type: 'string', minLength: 1, maxLength: 2048 },
    tenant: { type: 'string', maxLength: IDENTIFIER_MAX, default: '' },
    botId: { type: 'string', maxLength: IDENTIFIER_MAX, default: '' },
    allowInsecure: flag,
    plan: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { keepHistory: flag, keepVariables: flag, keepNlu: flag, flowOnly: flag },
    },
    maxDurationSec: { type: 'integer', default: 900 },
    pipeline: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        // Unset, the in-flight limit adapts (up to 1,024) and a runtime-ws pool follows it.
        concurrency: { type: 'integer', minimum: 1, maximum: 10_000 },
        fixedConcurrency: { type: 'boolean' },
        connections: { type: 'integer', minimum: 1, maximum: 256 },
        // Below a round trip, every answer would be lost: each reset sent again until attempts run out.
        ackTimeoutSec: { type: 'number', minimum: ACK_TIMEOUT_MIN_SEC, maximum: 3600, default: 10 },
        verify: { type: 'boolean', default: true },
        verifyTimeoutSec: positive(86_400, 30),
        maxAttempts: int(1, 100, DEFAULT_RETRY_POLICY.maxAttempts),
        maxUnreachable: int(0, 1_000_000, DEFAULT_MAX_UNREACHABLE),
      },
    },
    flowControl: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { rate: positive(1e6), fixed: flag },
    },
    socket: {
      type: 'object',
      additionalProperties: false,
      properties: { text: { type: 'string', maxLength: 10_000 }, data: { type: 'object' } },
    },
    defaultContextKeys: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 1000 },
    jobId: { type: 'string', minLength: 1, maxLength: JOB_ID_MAX },
    ledgerId: { type: 'string', minLength: 1, maxLength: JOB_ID_MAX },
    reason: { type: ['string', 'null'], maxLength: REASON_MAX, default: null },
    actor: { type: 'string', minLength: 1, maxLength: 300 },
    audit: { type: 'boolean', default: true },
    sinks: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        webhook: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            batch: int(1, 10_000, DEFAULT_WEBHOOK_BATCH),
            timeoutSec: { type: 'number', minimum: 0, maximum: 3600, default: 10 },
          },
        },
      },
    },
    dryRun: flag,
    engine: {
      type: 'string',
      minLength: 1,
      maxLength: IDENTIFIER_MAX,
      description:
        "a stable name of the engine, kept in the job's settings instead of its URL (an in-process emulator, whose port changes at each start)",
    },
    selector: {
      type: 'object',
      additionalProperties: false,
      required: ['odataUrl'],
      description: "the sessions to reset, found in the tenant's OData analytics data (docs/selectors.md)",
      properties: {
        flow: selectorRef,
        endpoint: selectorRef,
        node: selectorRef,
        since: { type: 'string', maxLength: 64, description: 'inclusive, RFC 3339' },
        until: { type: 'string', maxLength: 64, description: 'exclusive, RFC 3339' },
        limit: {
          type: 'integer',
          minimum: 1,
          maximum: SELECTOR_LIMIT_MAX,
          description: 'at most this many sessions',
        },
        odataUrl: { type: 'string', minLength: 1, maxLength: 2048 },
        apiUrl: {
          type: 'string',
          minLength: 1,
          maxLength: 2048,
          description: 'the REST API: `endpoint` reads the endpoint there',
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true });
const validate = ajv.compile(JOB_SPEC_SCHEMA);

/** `/pipeline/concurrency` → `pipeline.concurrency`; a missing property names itself. */
function fieldOf(error: ErrorObject): string {
  const path = error.instancePath.slice(1).replace(/\//g, '.');
  const missing = (error.params as { missingProperty?: string }).missingProperty;
  const extra = (error.params as { additionalProperty?: string }).additionalProperty;
  const leaf = missing ?? extra;
  return leaf === undefined ? path || '(spec)' : path === '' ? leaf : `${path}.${leaf}`;
}

export function specError(
  field: string,
  problem: string,
  code: 'CR_ERR_OPT_INVALID' | 'CR_ERR_OPT_MISSING' = 'CR_ERR_OPT_INVALID',
  cause?: unknown,
): CognigyResetError {
  return new CognigyResetError(code, `${field}: ${problem}`, {
    field,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Validates a job spec (a copy: the input is not changed) and fills its defaults. Beyond the schema: the
 * directive the spec compiles to must be one the engine accepts, ids must be printable, a fixed rate
 * needs a rate, a runtime-ws job that sends needs its tenant and bot, and URLs must be secure.
 */
export function jobSpec(value: unknown): JobSpec {
  const spec = structuredClone(value);
  if (!validate(spec)) {
    const error = validate.errors![0]!;
    const field = fieldOf(error);
    const problem =
      error.keyword === 'additionalProperties'
        ? 'is not a field of a job spec'
        : (error.message ?? 'is invalid');
    throw specError(
      field,
      problem,
      error.keyword === 'required' ? 'CR_ERR_OPT_MISSING' : 'CR_ERR_OPT_INVALID',
    );
  }
  const checked = spec as unknown as JobSpec;
  checkSemantics(checked);
  return checked;
}

function checkSemantics(spec: JobSpec): void {
  for (const field of ['tenant', 'botId', 'jobId', 'ledgerId', 'actor'] as const) {
    const text = spec[field];
    const problem = text === undefined || text === '' ? undefined : printableProblem(text, IDENTIFIER_MAX);
    if (problem !== undefined) throw specError(field, problem);
  }
  if (spec.ledgerId !== undefined && spec.jobId === undefined)
    throw specError('jobId', 'is required with ledgerId', 'CR_ERR_OPT_MISSING');
  if (spec.reason !== null && spec.reason !== undefined) {
    const problem = printableProblem(spec.reason, REASON_MAX);
    if (problem !== undefined) throw specError('reason', problem);
  }
  const probe = checkResetDirective({
    type: 'SEND',
    sessionId: 'probe',
    stateClearMatrix: { flowState: 'RESET' },
    contextWipeDirective: { clearVariables: true, clearHistory: true },
    maxDurationSec: spec.maxDurationSec,
    timestamp: new Date().toISOString(),
  });
  if (probe !== undefined) {
    throw specError(
      'maxDurationSec',
      `${probe.message} (the engine accepts ${MAX_DURATION_MIN_SEC}–${MAX_DURATION_MAX_SEC})`,
      'CR_ERR_OPT_INVALID',
      probe,
    );
  }
  if (spec.pipeline.fixedConcurrency === true && spec.pipeline.concurrency === undefined) {
    throw new CognigyResetError(
      'CR_ERR_OPT_MISSING',
      'pipeline.fixedConcurrency needs pipeline.concurrency',
      {
        field: 'pipeline.concurrency',
      },
    );
  }
  if (spec.flowControl.fixed && spec.flowControl.rate === undefined) {
    throw new CognigyResetError('CR_ERR_OPT_MISSING', 'flowControl.fixed needs flowControl.rate', {
      field: 'flowControl.rate',
    });
  }
  if (spec.transport === 'runtime-ws' && !spec.dryRun && (spec.tenant === '' || spec.botId === '')) {
    throw specError(
      spec.tenant === '' ? 'tenant' : 'botId',
      'is required to reset through runtime-ws',
      'CR_ERR_OPT_MISSING',
    );
  }
  if (spec.selector !== undefined) {
    try {
      checkSelector(spec.selector);
    } catch (err) {
      if (!(err instanceof CognigyResetError)) throw err;
      const code = err.code === 'CR_ERR_OPT_MISSING' ? 'CR_ERR_OPT_MISSING' : 'CR_ERR_OPT_INVALID';
      throw specError(`selector.${err.field ?? 'flow'}`, err.message, code, err);
    }
    checkedUrl(spec.selector.odataUrl, 'selector.odataUrl', ['https', 'http'], spec.allowInsecure);
    if (spec.selector.apiUrl !== undefined)
      checkedUrl(spec.selector.apiUrl, 'selector.apiUrl', ['https', 'http'], spec.allowInsecure);
  }
  if (spec.sinks.webhook !== undefined) {
    checkedUrl(spec.sinks.webhook.url, 'sinks.webhook.url', ['https', 'http'], spec.allowInsecure);
  }
}

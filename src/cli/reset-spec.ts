/**
 * From `reset`'s flags to a job spec, and from a spec field back to its flag: the runner's errors name
 * spec fields (`pipeline.concurrency`), the CLI shows them as the flags the user typed.
 */
import { CognigyResetError } from '../errors.js';
import { withFlagNames } from './flag-names.js';
import { DEFAULT_WS_URL } from '../protocol/index.js';
import { jobSpec } from '../runner/spec.js';
import type { JobSpec } from '../runner/types.js';
import type { ResetFlags } from './reset-flags.js';

const URL_FLAG = { 'runtime-ws': '--url', 'cognigy-rest': '--api-url', 'cognigy-socket': '--endpoint-url' };

/** The same error, with each spec field it names shown as its flag (`url` as this transport's). */
export function asFlags(err: unknown, transport: keyof typeof URL_FLAG): unknown {
  return withFlagNames(err, { url: URL_FLAG[transport] });
}

/** A setting from its flag or, failing that, its environment variable; missing is a usage error. */
function setting(flag: string | undefined, env: NodeJS.ProcessEnv, name: string, missing: string): string {
  const value = flag ?? env[name];
  if (value === undefined || value === '') {
    throw new CognigyResetError('CR_ERR_OPT_MISSING', `${missing} (or ${name})`);
  }
  return value;
}

function parseFirstData(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', 'Expected --first-data to be JSON', {
      field: '--first-data',
      cause,
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', 'Expected --first-data to be a JSON object', {
      field: '--first-data',
    });
  }
  return value as Record<string, unknown>;
}

/** Where the chosen transport goes: --url, --api-url or --endpoint-url (each also from its env variable). */
export function targetUrl(flags: ResetFlags, env: NodeJS.ProcessEnv): string {
  if (flags.transport === 'cognigy-rest')
    return setting(flags.apiUrl, env, 'COGNIGY_API_URL', '--transport cognigy-rest needs --api-url');
  if (flags.transport === 'cognigy-socket')
    return setting(
      flags.endpointUrl,
      env,
      'COGNIGY_ENDPOINT_URL',
      '--transport cognigy-socket needs --endpoint-url',
    );
  return flags.url ?? env['COGNIGY_WS_URL'] ?? DEFAULT_WS_URL;
}

export interface SpecInputs {
  url: string;
  tenant: string;
  botId: string;
  actor: string;
  reason: string | null;
}

/** The job spec of a `reset` run, validated. */
export function specFromFlags(flags: ResetFlags, inputs: SpecInputs): JobSpec {
  const data = parseFirstData(flags.firstData);
  const spec = {
    transport: flags.transport,
    url: inputs.url,
    tenant: inputs.tenant,
    botId: inputs.botId,
    allowInsecure: flags.allowInsecure,
    plan: {
      keepHistory: flags.keepHistory,
      keepVariables: flags.keepVariables,
      keepNlu: flags.keepNlu,
      flowOnly: flags.flowOnly,
    },
    maxDurationSec: flags.maxDuration,
    pipeline: {
      ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
      ...(flags.fixedConcurrency ? { fixedConcurrency: true } : {}),
      ...(flags.connections === undefined ? {} : { connections: flags.connections }),
      ackTimeoutSec: flags.ackTimeout,
      verify: flags.verify,
      verifyTimeoutSec: flags.verifyTimeout,
      maxAttempts: flags.maxAttempts,
      maxUnreachable: flags.maxUnreachable,
    },
    flowControl: { ...(flags.rate === undefined ? {} : { rate: flags.rate }), fixed: flags.fixedRate },
    ...(flags.transport === 'cognigy-socket'
      ? {
          socket: {
            ...(flags.firstText === undefined ? {} : { text: flags.firstText }),
            ...(data === undefined ? {} : { data }),
          },
        }
      : {}),
    // Unset, the transport learns each Flow's default from its first reset in the run.
    ...(flags.defaultContextKeys === undefined
      ? {}
      : {
          defaultContextKeys: flags.defaultContextKeys
            .split(',')
            .map((k) => k.trim())
            .filter((k) => k !== ''),
        }),
    ...(flags.job === undefined ? {} : { jobId: flags.job }),
    reason: inputs.reason,
    actor: inputs.actor,
    audit: flags.audit,
    sinks:
      flags.analyticsUrl === undefined
        ? {}
        : {
            webhook: {
              url: flags.analyticsUrl,
              batch: flags.analyticsBatch,
              timeoutSec: flags.analyticsTimeout,
            },
          },
    dryRun: flags.dryRun,
  };
  try {
    return jobSpec(spec);
  } catch (err) {
    throw asFlags(err, flags.transport);
  }
}

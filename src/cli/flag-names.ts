/**
 * The library names its settings as spec fields (`pipeline.concurrency`, `apiUrl`); the CLI shows them as
 * the flags the user typed. One map, one rewrite, for every command.
 */
import { CognigyResetError, isCognigyResetError } from '../errors.js';

const FLAGS: Record<string, string> = {
  tenant: '--tenant',
  botId: '--bot',
  maxDurationSec: '--max-duration',
  'pipeline.concurrency': '--concurrency',
  'pipeline.fixedConcurrency': '--fixed-concurrency',
  'pipeline.connections': '--connections',
  'pipeline.ackTimeoutSec': '--ack-timeout',
  'pipeline.verifyTimeoutSec': '--verify-timeout',
  'pipeline.maxAttempts': '--max-attempts',
  'pipeline.maxUnreachable': '--max-unreachable',
  'flowControl.rate': '--rate',
  'flowControl.fixed': '--fixed-rate',
  'socket.text': '--first-text',
  'socket.data': '--first-data',
  defaultContextKeys: '--default-context-keys',
  jobId: '--job',
  reason: '--reason',
  actor: 'COGNIGY_RESET_ACTOR',
  'sinks.webhook.url': '--analytics-url',
  'sinks.webhook.batch': '--analytics-batch',
  'sinks.webhook.timeoutSec': '--analytics-timeout',
  url: '--url',
  apiUrl: '--api-url',
  endpointUrl: '--endpoint-url',
  odataUrl: '--odata-url',
  allowInsecure: '--allow-insecure',
  metricsPort: '--metrics-port',
  port: '--port',
};

/** A field's flag: `overrides` first (a spec's `url` is `--api-url` for REST), then the map. */
export function flagOf(field: string, overrides: Record<string, string> = {}): string {
  return overrides[field] ?? FLAGS[field] ?? field;
}

const NAMES = Object.keys(FLAGS).sort((a, b) => b.length - a.length);
const PATTERNS = NAMES.map(
  (name) =>
    [
      name,
      new RegExp(String.raw`(^|[^\w.\x60-])` + name.replace(/\./g, '\\.') + String.raw`(?![\w.\x60])`, 'g'),
    ] as const,
);

/** The same error, with each field it names (outside backticks) shown as its flag. */
export function withFlagNames(err: unknown, overrides: Record<string, string> = {}): unknown {
  if (!isCognigyResetError(err) || err.field === undefined || !(err.field in FLAGS || err.field in overrides))
    return err;
  let message = err.message;
  for (const [name, pattern] of PATTERNS) message = message.replace(pattern, `$1${flagOf(name, overrides)}`);
  return new CognigyResetError(err.code, message, {
    field: flagOf(err.field, overrides),
    cause: err.cause ?? err,
  });
}

/**
 * Operational logs: pino JSON on stderr. Every field that can carry a token is redacted, URLs lose their
 * credential query values, and known secrets are scrubbed from messages as a last line of defence.
 */
import { pino, type Logger } from 'pino';
import { safeJsonText } from '../util/printable.js';
import { redactUrl, scrubSecrets } from '../util/redact.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, secrets: () => string[]): Logger {
  return pino(
    {
      level,
      base: { name: 'cognigy-reset' },
      redact: {
        paths: [
          'token',
          '*.token',
          'accessToken',
          'refreshToken',
          'clientSecret',
          'apiKey',
          'headers.authorization',
          'headers["x-api-key"]',
          'url',
          '*.url',
        ],
        censor: (value: unknown, path: string[]) =>
          path[path.length - 1] === 'url' && typeof value === 'string' ? redactUrl(value) : '[REDACTED]',
      },
      hooks: {
        // Ids and reasons in a log line cannot drive the terminal that shows stderr.
        streamWrite: safeJsonText,
        logMethod(args, method) {
          const clean = args.map((arg: unknown) =>
            typeof arg === 'string' ? scrubSecrets(arg, secrets()) : arg,
          );
          method.apply(this, clean as Parameters<typeof method>);
        },
      },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

/**
 * The PostgreSQL store's URL: how it is shown (never its password) and the driver settings every
 * connection of the store gets.
 */
import type { ClientConfig } from 'pg';

/** `postgres://` or `postgresql://`: a PostgreSQL store. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Connection parameters whose values are shown as they are; every other value (`password`, `sslkey`, a
 * parameter of a newer driver) is redacted.
 */
const SHOWN_PARAMS = new Set([
  'sslmode',
  'application_name',
  'connect_timeout',
  'options',
  'target_session_attrs',
]);

const REDACTED = '[REDACTED]';

/**
 * The URL with its password (in the userinfo or the query) and its fragment redacted: what the store's
 * `location`, its errors and logs show. A text that is not a URL is not shown at all.
 */
export function redactStoreUrl(location: string): string {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return 'postgres://[not a URL: not shown]';
  }
  const user =
    url.username === '' && url.password === ''
      ? ''
      : `${url.username}${url.password === '' ? '' : `:${REDACTED}`}@`;
  const query = [...url.searchParams]
    .map(([name, value]) =>
      SHOWN_PARAMS.has(name)
        ? `${encodeURIComponent(name)}=${encodeURIComponent(value)}`
        : /^[a-z_]{1,40}$/.test(name)
          ? `${name}=${REDACTED}`
          : REDACTED,
    )
    .join('&');
  return `${url.protocol}//${user}${url.host}${url.pathname}${query === '' ? '' : `?${query}`}${url.hash === '' ? '' : `#${REDACTED}`}`;
}

/** How long connecting may take, and a lock (the chain head, a job row, the migration lock) be waited for. */
const CONNECT_TIMEOUT_MS = 10_000;
const LOCK_TIMEOUT_MS = 30_000;

/** The settings of every connection to the store at `location`. */
export function clientConfig(location: string): ClientConfig {
  return {
    connectionString: location,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    lock_timeout: LOCK_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'cognigy-reset',
  };
}

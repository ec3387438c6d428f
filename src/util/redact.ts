/**
 * Redaction of secrets from anything a user or a log can see. A URL the user gives may carry a secret in
 * any query parameter (the seed puts its token there; trackers and gateways use names of their own), in
 * its userinfo or in its fragment: every URL we print, log or store goes through `redactUrl` first.
 */

/**
 * Query parameters whose value is known not to be a secret, compared exactly: the runtime dial URL's
 * tenant and bot ids, which every audit record shows anyway. Every other value is redacted.
 */
const SAFE_PARAMS = new Set(['tenant', 'botId']);

/** A parameter name shown as it is; any other name may itself be the secret (`?s3cr3t`). */
const SHOWN_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;

const REDACTED = '[REDACTED]';

export interface RedactOptions {
  /**
   * Keep the path. Off for URLs whose path is the secret (a Socket endpoint's URLToken, a webhook's
   * signed path): only the origin is shown. @default true
   */
  path?: boolean;
}

/**
 * The URL with its userinfo, every query value (but `tenant` and `botId`) and its fragment replaced by
 * `[REDACTED]`, and without its path when `options.path` is false. A text that is not a URL is not shown
 * at all: a malformed URL cannot be taken apart, so any part of it may be the secret.
 */
export function redactUrl(input: string | URL, options: RedactOptions = {}): string {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    return '[not a URL: not shown]';
  }
  const auth = url.username !== '' || url.password !== '' ? `${REDACTED}@` : '';
  const origin = `${url.protocol}//${auth}${url.host}`;
  if (options.path === false) return origin;
  const query = [...url.searchParams]
    .map(([name, value]) =>
      SAFE_PARAMS.has(name)
        ? `${encodeURIComponent(name)}=${encodeURIComponent(value)}`
        : SHOWN_NAME.test(name) && value !== ''
          ? `${name}=${REDACTED}`
          : REDACTED,
    )
    .join('&');
  return `${origin}${url.pathname}${query === '' ? '' : `?${query}`}${url.hash === '' ? '' : `#${REDACTED}`}`;
}

/** Replaces each known secret that occurs in `text` (a belt-and-braces pass over error messages). */
export function scrubSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  return out;
}

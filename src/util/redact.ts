/**
 * Redaction of secrets from anything a user or a log can see. The seed puts the token in the query
 * string, so every URL we print goes through `redactUrl` first.
 */

/** Query parameters whose value is a credential. Compared case-insensitively. */
const SECRET_PARAMS = new Set(['token', 'access_token', 'api_key', 'apikey', 'urltoken', 'client_secret']);

/** The URL with every credential-bearing query value and any userinfo replaced by `[REDACTED]`. */
export function redactUrl(input: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    // Not a URL: redact anything that looks like a query credential all the same.
    return String(input).replace(
      /([?&](?:token|access_token|api_key|apikey|urltoken)=)[^&#\s]*/gi,
      '$1[REDACTED]',
    );
  }
  if (url.username !== '' || url.password !== '') {
    url.username = 'REDACTED';
    url.password = '';
  }
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_PARAMS.has(key.toLowerCase())) url.searchParams.set(key, '[REDACTED]');
  }
  return url.toString().replace(/%5BREDACTED%5D/g, '[REDACTED]');
}

/** Replaces each known secret that occurs in `text` (a belt-and-braces pass over error messages). */
export function scrubSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[REDACTED]');
  }
  return out;
}

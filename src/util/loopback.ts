/** Plain `ws://` and `http://` are allowed to loopback hosts only, unless the user opts in. */
import { isIP } from 'node:net';
import { CognigyResetError } from '../errors.js';
import { redactUrl } from './redact.js';

/**
 * A loopback address, or `localhost` itself (the hosts file names it). Other names under `.localhost` are
 * not: a resolver that does not keep RFC 6761 would send them, and the token with them, elsewhere.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Parses a URL given by the user (`option` names where it came from), checks its scheme against
 * `schemes` (`['https', 'http']`) and that it is not plain text to a host other than loopback.
 */
export function checkedUrl(
  text: string,
  option: string,
  schemes: readonly string[],
  allowInsecure: boolean,
): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      // Not even redacted: a text that is no URL cannot be taken apart, so any of it may be the secret.
      `Expected ${option} to be a URL; the value given is not one (not shown: it may hold a secret)`,
      { field: option, cause },
    );
  }
  if (!schemes.includes(url.protocol.slice(0, -1))) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected ${option} to be a ${schemes.join(' or ')} URL, got ${url.protocol}`,
      { field: option },
    );
  }
  assertSecureUrl(url, allowInsecure, option);
  return url;
}

/** Throws `CR_ERR_OPT_INSECURE_URL` for a plain-text URL to a host that is not loopback. */
export function assertSecureUrl(url: URL, allowInsecure: boolean, option: string): void {
  const plain = url.protocol === 'ws:' || url.protocol === 'http:';
  if (plain && !allowInsecure && !isLoopbackHost(url.hostname)) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INSECURE_URL',
      `${option} ${redactUrl(url, { path: false })} is plain text to a host that is not loopback; use ${url.protocol === 'ws:' ? 'wss' : 'https'}:// or pass allowInsecure`,
      { field: option },
    );
  }
}

/** Plain `ws://` and `http://` are allowed to loopback hosts only, unless the user opts in. */
import { isIP } from 'node:net';
import { CognigyResetError } from '../errors.js';
import { redactUrl } from './redact.js';

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** Throws `CR_ERR_OPT_INSECURE_URL` for a plain-text URL to a host that is not loopback. */
export function assertSecureUrl(url: URL, allowInsecure: boolean, option: string): void {
  const plain = url.protocol === 'ws:' || url.protocol === 'http:';
  if (plain && !allowInsecure && !isLoopbackHost(url.hostname)) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INSECURE_URL',
      `${option} ${redactUrl(url)} is plain text to a host that is not loopback; use ${url.protocol === 'ws:' ? 'wss' : 'https'}:// or pass --allow-insecure`,
      { field: option },
    );
  }
}

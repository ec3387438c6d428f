/** The dial URL of the runtime WebSocket API: `{base}/ws/v1?tenant=&botId=` (the token is added per dial). */
import { CognigyResetError } from '../../errors.js';
import { WS_PATH } from '../../protocol/index.js';
import { assertSecureUrl } from '../../util/loopback.js';
import { redactUrl } from '../../util/redact.js';

/**
 * Accepts an engine base (`wss://api.cognigy.com`), a ws URL (`wss://…/ws/v1`) or an http(s) base, and
 * returns the ws URL with tenant and botId set. Any token in the given URL is dropped: tokens come from
 * the environment or a file.
 */
export function runtimeDialUrl(base: string, tenant: string, botId: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch (cause) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected --url to be a URL, got ${JSON.stringify(redactUrl(base))}`,
      {
        field: '--url',
        cause,
      },
    );
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected --url to be a ws:// or wss:// URL, got ${url.protocol}`,
      {
        field: '--url',
      },
    );
  }
  assertSecureUrl(url, allowInsecure, '--url');
  if (url.pathname === '' || url.pathname === '/') url.pathname = WS_PATH;
  url.searchParams.delete('token');
  url.searchParams.set('tenant', tenant);
  url.searchParams.set('botId', botId);
  url.hash = '';
  return url;
}

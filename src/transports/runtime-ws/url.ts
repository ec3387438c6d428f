/** The dial URL of the runtime WebSocket API: `{base}/ws/v1?tenant=&botId=` (the token is added per dial). */
import { WS_PATH } from '../../protocol/index.js';
import { checkedUrl } from '../../util/loopback.js';

/**
 * Accepts an engine base (`wss://api.cognigy.com`), a ws URL (`wss://…/ws/v1`) or an http(s) base, and
 * returns the ws URL with tenant and botId set. Any token in the given URL is dropped: tokens come from
 * the environment or a file.
 */
export function runtimeDialUrl(base: string, tenant: string, botId: string, allowInsecure: boolean): URL {
  const url = checkedUrl(base, 'url', ['wss', 'ws', 'https', 'http'], allowInsecure);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.pathname === '' || url.pathname === '/') url.pathname = WS_PATH;
  url.searchParams.delete('token');
  url.searchParams.set('tenant', tenant);
  url.searchParams.set('botId', botId);
  url.hash = '';
  return url;
}

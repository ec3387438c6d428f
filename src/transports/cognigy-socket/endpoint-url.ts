/**
 * Where a Socket endpoint's Socket.IO server listens, from the endpoint URL a user copies out of Cognigy
 * (`https://endpoint-trial.cognigy.ai/<URLToken>`, or on-prem `https://host/prefix/<URLToken>`). The
 * official client connects to the URL's origin with the path `<pathname>/socket.io`; given the URL with
 * its URLToken, the token is the last segment and not part of that path. So: the URL's path, less a last
 * segment equal to the URLToken, is the prefix, and Socket.IO's path is the prefix plus `/socket.io`.
 */
export interface SocketEndpoint {
  /** `http(s)://host[:port]`: what Socket.IO dials. */
  origin: string;
  /** `<prefix>/socket.io`. */
  path: string;
  /** The origin and prefix, never the URLToken: what messages name. */
  where: string;
}

export function socketEndpoint(url: URL, urlToken: string): SocketEndpoint {
  const segments = url.pathname.split('/').filter((s) => s !== '');
  const last = segments.at(-1);
  if (last !== undefined && (last === urlToken || safeDecode(last) === urlToken)) segments.pop();
  const prefix = segments.length === 0 ? '' : `/${segments.join('/')}`;
  const origin = url.origin.replace(/^ws/, 'http');
  return { origin, path: `${prefix}/socket.io`, where: `${origin}${prefix}` };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

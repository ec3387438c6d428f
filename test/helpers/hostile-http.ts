/**
 * Hostile HTTP servers on 127.0.0.1: a redirector that answers every request (and every WebSocket
 * upgrade) with a redirect, and a trap on another port (so another origin) that records whatever reaches
 * it. A client that keeps its credentials to the origin it was given leaves the trap empty.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Trap {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  seen: Seen[];
  close(): void;
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function closer(server: Server): () => void {
  return () => {
    server.closeAllConnections();
    server.close();
  };
}

/** Records every request and upgrade, and answers 200 `{}` (an upgrade is cut). */
export async function trap(): Promise<Trap> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"stolen"}');
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket) => {
    seen.push({ method: 'UPGRADE', url: req.url ?? '', headers: req.headers, body: '' });
    socket.destroy();
  });
  const origin = await listen(server);
  return { origin, seen, close: closer(server) };
}

export interface Redirector {
  origin: string;
  /** Requests (and upgrades) it answered. */
  hits: number;
  close(): void;
}

/** Answers everything with `status` and `Location: location`. */
export async function redirector(status: number, location: string): Promise<Redirector> {
  const r: Redirector = { origin: '', hits: 0, close: () => undefined };
  const server = createServer((req, res) => {
    req.resume();
    r.hits++;
    res.writeHead(status, { location, 'content-type': 'text/plain' }).end('moved');
  });
  server.on('upgrade', (_req: IncomingMessage, socket) => {
    r.hits++;
    socket.end(
      `HTTP/1.1 ${status} Redirect\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
  });
  r.origin = await listen(server);
  r.close = closer(server);
  return r;
}

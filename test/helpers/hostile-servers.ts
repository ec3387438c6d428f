/**
 * Hostile HTTP and TCP servers on 127.0.0.1: an API that rate-limits with 429, one that never stops a
 * body, one that asks to wait for ever, one that accepts a connection and never answers its handshake.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';

export interface HostileServer {
  url: string;
  /** Requests (or connections) received so far. */
  hits: number;
  close(): void;
}

export async function hostileHttp(
  handler: (req: IncomingMessage, res: ServerResponse, hit: number) => void,
): Promise<HostileServer> {
  const server: Server = createServer((req, res) => {
    req.resume();
    handler(req, res, ++hostile.hits);
  });
  const hostile: HostileServer = { url: '', hits: 0, close: () => undefined };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  hostile.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  hostile.close = () => {
    server.closeAllConnections();
    server.close();
  };
  return hostile;
}

/** A TCP server that accepts every connection and never says a word: a handshake that never completes. */
export async function silentTcp(): Promise<HostileServer> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    hostile.hits++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
  });
  const hostile: HostileServer = { url: '', hits: 0, close: () => undefined };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  hostile.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  hostile.close = () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  };
  return hostile;
}

/**
 * A REST API that allows `perSec` requests a second (a token bucket) and answers 429 above that, with
 * the `Retry-After` that `retryAfter` gives (none when it returns undefined).
 */
export function rateLimited(
  perSec: number,
  retryAfter: () => string | undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  let tokens = perSec;
  let last = Date.now();
  return (_req, res) => {
    const now = Date.now();
    tokens = Math.min(perSec, tokens + ((now - last) / 1000) * perSec);
    last = now;
    if (tokens < 1) {
      const after = retryAfter();
      res
        .writeHead(429, {
          'content-type': 'application/problem+json',
          ...(after === undefined ? {} : { 'retry-after': after }),
        })
        .end(JSON.stringify({ status: 429, title: 'Too Many Requests' }));
      return;
    }
    tokens -= 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  };
}

/** Answers 200 with a JSON body that never ends (a chunk every few milliseconds), until the client leaves. */
export function endlessBody(res: ServerResponse, chunk = `"${'x'.repeat(64 * 1024)}",`): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('[');
  const timer = setInterval(() => {
    if (res.destroyed) clearInterval(timer);
    else res.write(chunk);
  }, 2);
  res.on('close', () => clearInterval(timer));
}

/** CSV rows for the REST transport: `n` sessions. */
export function restRows(n: number): string {
  const rows = ['sessionId,userId,flowReferenceId,entrypoint'];
  for (let k = 1; k <= n; k++)
    rows.push(`s-${k},u-${k},7c0e5a4e-0000-4000-8000-000000000001,5f1e2d3c4b5a69788796a5b4`);
  return `${rows.join('\n')}\n`;
}

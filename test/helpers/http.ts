/** A local HTTP API that answers from a script, for tests of clients against failures. */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

/**
 * `ok`: 200 `{}`; `hang`: never answer; `drop`: cut the connection; `{json}`: 200 with that body; or an
 * RFC 7807 problem.
 */
export type Step =
  | 'ok'
  | 'hang'
  | 'drop'
  | { json: unknown }
  | { status: number; problem: Record<string, unknown>; retryAfterDateMs?: number; retryAfterSec?: number };

export interface ScriptedApi {
  url: string;
  /** Steps for the next requests, in order; past the end every request is `ok`. */
  script: Step[];
  /** When each request arrived (`Date.now()`), in order. */
  arrivals: number[];
  close(): void;
}

export async function scriptedApi(): Promise<ScriptedApi> {
  const api: ScriptedApi = { url: '', script: [], arrivals: [], close: () => undefined };
  const server: Server = createServer((req, res) => {
    api.arrivals.push(Date.now());
    req.resume();
    const step = api.script.shift() ?? 'ok';
    if (step === 'hang') return;
    if (step === 'drop') return req.socket.destroy();
    if (step === 'ok') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if ('json' in step)
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(step.json));
    const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
    // An HTTP-date Retry-After, computed when the answer is sent.
    if (step.retryAfterDateMs !== undefined) {
      headers['retry-after'] = new Date(Date.now() + step.retryAfterDateMs).toUTCString();
    }
    if (step.retryAfterSec !== undefined) headers['retry-after'] = String(step.retryAfterSec);
    res.writeHead(step.status, headers).end(JSON.stringify(step.problem));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  api.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  api.close = () => {
    server.closeAllConnections();
    server.close();
  };
  return api;
}

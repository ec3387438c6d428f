/** A small test client over real `ws`: every wait has a deadline. */
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';

export const DEADLINE_MS = 10_000;

export function withDeadline<T>(promise: Promise<T>, ms = DEADLINE_MS, what = 'event'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline of ${ms} ms passed waiting for ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export interface DialOptions {
  tenant?: string | undefined;
  botId?: string | undefined;
  token?: string | undefined;
  protocol?: string | undefined;
  origin?: string;
}

export function runtimeUrl(wsUrl: string, opts: DialOptions = {}): string {
  const url = new URL(wsUrl);
  const params: [string, string | undefined][] = [
    ['tenant', 'tenant' in opts ? opts.tenant : 'tenant-1'],
    ['botId', 'botId' in opts ? opts.botId : 'bot-1'],
    ['token', 'token' in opts ? opts.token : 'dev-token'],
  ];
  for (const [key, value] of params) if (value !== undefined) url.searchParams.set(key, value);
  return url.toString();
}

export class TestClient {
  readonly ws: WebSocket;
  readonly messages: string[] = [];
  #waiters: ((text: string) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const text = (data as Buffer).toString('utf8');
      const waiter = this.#waiters.shift();
      if (waiter) waiter(text);
      else this.messages.push(text);
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })),
    );
    ws.on('error', () => undefined);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next message, parsed. */
  next(ms = DEADLINE_MS): Promise<Record<string, unknown>> {
    const queued = this.messages.shift();
    if (queued !== undefined) return Promise.resolve(JSON.parse(queued) as Record<string, unknown>);
    return withDeadline(
      new Promise<Record<string, unknown>>((resolve) => this.#waiters.push((t) => resolve(JSON.parse(t)))),
      ms,
      'the next message',
    );
  }

  async request(frame: unknown): Promise<Record<string, unknown>> {
    this.send(frame);
    return this.next();
  }

  waitClosed(ms = DEADLINE_MS): Promise<{ code: number; reason: string }> {
    return withDeadline(this.closed, ms, 'close');
  }

  close(): void {
    this.ws.close();
  }
}

export async function dial(wsUrl: string, opts: DialOptions = {}): Promise<TestClient> {
  const ws = new WebSocket(runtimeUrl(wsUrl, opts), opts.protocol ?? 'cognigy-runtime-v1', {
    origin: opts.origin ?? 'https://api.cognigy.com',
  });
  const client = new TestClient(ws);
  await withDeadline(
    Promise.race([
      once(ws, 'open'),
      once(ws, 'unexpected-response').then(([, res]) => {
        throw new Error(`handshake answered ${(res as { statusCode: number }).statusCode}`);
      }),
      once(ws, 'error').then(([err]) => {
        throw err as Error;
      }),
    ]),
    DEADLINE_MS,
    'the handshake',
  );
  return client;
}

/** Dials and expects a refused handshake: returns its status, headers and body. */
export async function dialRefused(
  wsUrl: string,
  opts: DialOptions = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const ws = new WebSocket(runtimeUrl(wsUrl, opts), 'cognigy-runtime-v1');
  ws.on('error', () => undefined);
  const [, res] = (await withDeadline(
    once(ws, 'unexpected-response'),
    DEADLINE_MS,
    'a refused handshake',
  )) as [unknown, IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  ws.terminate();
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
}

/** The directive exactly as the seed's CompileResetPayload builds it. */
export function seedDirective(sessionId: string, maxDurationSec = 900): Record<string, unknown> {
  return {
    type: 'SEND',
    sessionId,
    stateClearMatrix: { flowState: 'RESET', dialogState: 'COLD', engineState: 'INITIALIZED' },
    contextWipeDirective: { clearVariables: true, clearHistory: true, clearNLUContext: true },
    maxDurationSec,
    timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}

export function stateCheck(sessionId: string, requestId?: string): Record<string, unknown> {
  return { type: 'QUERY', sessionId, request: 'STATE_CHECK', ...(requestId ? { requestId } : {}) };
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

export async function sendJson(
  method: string,
  url: string,
  body: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

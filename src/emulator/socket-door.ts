/**
 * The Cognigy Socket endpoint, what `@cognigy/socket-client` speaks: a Socket.IO v4 server with
 * `allowEIO3` (the official client 4.9.2 is Engine.IO v3) on `<prefix>/socket.io/`, over the same session
 * store. The handshake query (`sessionId`, `urlToken`, `userId`, `testMode`, `emitWithAck`) arrives
 * URL-encoded twice and is decoded once more. After connecting it emits `endpoint-ready` (Cognigy.AI 4.79
 * and later; `endpointReady: false` models an older tenant that never sends it). `processInput` with
 * `resetFlow: true` restarts the session's Flow; each input is answered with `typingStatus` on, `output`,
 * `typingStatus` off and `finalPing` (as an `output` of type `finalPing` with `finalPingAsOutput`, as
 * older endpoints send it). A sessionId the store does not know starts a new conversation, as on a real
 * endpoint: there is no "not found". An engine-error session gets an `output` of type `error` (code 1008,
 * an internal error). At the handshake a wrong URLToken is refused (401), a disabled endpoint's (403), and
 * past the `handshakeRate` fault a connection is refused with 429 and `retryAfterMs`. The `dropEveryFrames`
 * fault drops the connection after an input was processed, before its answers: the Flow did restart.
 */
import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import { type EmulatorContext, rateLimit } from './context.js';
import { bump } from './stats.js';

export const DEFAULT_URL_TOKEN = 'dev-url-token';

export interface SocketDoorOptions {
  urlToken: string;
  /** @default [] */
  disabledUrlTokens?: readonly string[] | undefined;
  /** Emit `endpoint-ready` after connecting (Cognigy.AI 4.79 and later). @default true */
  endpointReady?: boolean | undefined;
  /** Send `finalPing` as an `output` of type `finalPing`, as older endpoints do. @default false */
  finalPingAsOutput?: boolean | undefined;
  /** A path prefix, as on-prem endpoints have: Socket.IO is served at `<prefix>/socket.io/`. @default '' */
  pathPrefix?: string | undefined;
}

/** The Socket.IO path for a prefix, as the official client builds it: the prefix plus `/socket.io`. */
export function socketIoPath(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '/socket.io/' : `/${trimmed}/socket.io/`;
}

function decodeAgain(value: unknown): string {
  const text = Array.isArray(value) ? String(value[0] ?? '') : typeof value === 'string' ? value : '';
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

interface ProcessInput {
  URLToken?: unknown;
  userId?: unknown;
  sessionId?: unknown;
  resetFlow?: unknown;
  text?: unknown;
  data?: unknown;
}

export class SocketDoor {
  readonly #io: Server;
  readonly #ctx: EmulatorContext;
  readonly #urlToken: string;
  #inputs = 0;

  readonly #disabled: ReadonlySet<string>;
  readonly #endpointReady: boolean;
  readonly #finalPingAsOutput: boolean;
  /** Where Socket.IO listens, for the HTTP server's upgrade routing. */
  readonly path: string;

  constructor(ctx: EmulatorContext, server: HttpServer, options: SocketDoorOptions) {
    this.#ctx = ctx;
    this.#urlToken = options.urlToken;
    this.#disabled = new Set(options.disabledUrlTokens ?? []);
    this.#endpointReady = options.endpointReady ?? true;
    this.#finalPingAsOutput = options.finalPingAsOutput ?? false;
    this.path = socketIoPath(options.pathPrefix);
    this.#io = new Server(server, {
      path: this.path,
      allowEIO3: true,
      serveClient: false,
      destroyUpgrade: false,
      cors: { origin: true },
    });
    const refuse = (next: (err?: Error) => void, message: string, data: Record<string, unknown>): void => {
      bump(ctx.stats.socket, `refused ${String(data['code'])}`);
      const err = new Error(message) as Error & { data?: unknown };
      err.data = data;
      next(err);
    };
    this.#io.use((socket, next) => {
      const token = decodeAgain(socket.handshake.query['urlToken']);
      if (this.#disabled.has(token)) return refuse(next, 'endpoint disabled', { code: 403 });
      if (token !== this.#urlToken) return refuse(next, 'invalid URLToken', { code: 401 });
      const wait = rateLimit(ctx, 'socket-handshake', token, ctx.faults.handshakeRate);
      if (wait > 0) return refuse(next, 'too many connections', { code: 429, retryAfterMs: wait });
      next();
    });
    this.#io.on('connection', (socket) => this.#accept(socket));
  }

  #accept(socket: Socket): void {
    const ctx = this.#ctx;
    bump(ctx.stats.socket, 'connections');
    const handshake = {
      sessionId: decodeAgain(socket.handshake.query['sessionId']),
      userId: decodeAgain(socket.handshake.query['userId']),
    };
    socket.on('processInput', (payload: ProcessInput) => {
      bump(ctx.stats.socket, 'processInput');
      const input = payload !== null && typeof payload === 'object' ? payload : {};
      if (input.URLToken !== undefined && input.URLToken !== this.#urlToken) {
        socket.emit('exception', { message: 'URLToken does not match the endpoint' });
        return;
      }
      const sessionId = typeof input.sessionId === 'string' ? input.sessionId : handshake.sessionId;
      if (sessionId !== handshake.sessionId) {
        // Only equal when the handshake query was decoded the second time it needs.
        socket.emit('exception', { message: 'sessionId does not match the one given at the handshake' });
        return;
      }
      const { faults } = ctx;
      const drop = faults.dropEveryFrames > 0 && ++this.#inputs % faults.dropEveryFrames === 0;
      let session = ctx.store.get(sessionId);
      if (session === undefined) {
        // A real endpoint starts a new conversation for a sessionId it has not seen.
        bump(ctx.stats.socket, 'new-session');
        ctx.store.create({
          sessionId,
          userId: handshake.userId,
          variables: {},
          history: [],
          nluContext: null,
        });
        session = ctx.store.get(sessionId)!;
      }
      const finalPing = (): void => {
        if (this.#finalPingAsOutput) socket.emit('output', { type: 'finalPing', data: { type: 'regular' } });
        else socket.emit('finalPing', { type: 'regular' });
      };
      if (session.engineError) {
        const fail = (): void => {
          bump(ctx.stats.socket, 'internal-error');
          socket.emit('output', {
            type: 'error',
            data: { code: 1008, error: 'internal error while executing the Flow' },
          });
          finalPing();
        };
        if (faults.latencyMs > 0) setTimeout(fail, faults.latencyMs);
        else fail();
        return;
      }
      // The input is processed when it arrives; the answers follow after the latency fault, or are lost.
      if (input.resetFlow === true) {
        ctx.store.resetFlow(sessionId);
        bump(ctx.stats.socket, 'resetFlow');
      }
      if (drop) {
        bump(ctx.stats.socket, 'dropped');
        socket.conn.close();
        return;
      }
      const text = typeof input.text === 'string' && input.text !== '' ? input.text : undefined;
      const answer = (): void => {
        socket.emit('typingStatus', { status: 'typingOn' });
        socket.emit('output', {
          type: 'output',
          data: {
            text: input.resetFlow === true ? 'The flow starts over.' : `You said: ${text ?? ''}`,
            data: {},
          },
        });
        socket.emit('typingStatus', { status: 'typingOff' });
        finalPing();
      };
      if (faults.latencyMs > 0) setTimeout(answer, faults.latencyMs);
      else answer();
    });
    if (this.#endpointReady) socket.emit('endpoint-ready');
  }

  async close(): Promise<void> {
    this.#io.disconnectSockets(true);
    await new Promise<void>((resolve) => {
      this.#io.engine.close();
      resolve();
    });
  }
}

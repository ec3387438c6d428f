/**
 * The runtime WebSocket door (the seed's API): the handshake checks, then one answer per request, in request
 * order, and nothing unsolicited — a client that reads "the next message" after each request works.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CLOSE_ENGINE_ERROR,
  CLOSE_NORMAL,
  CLOSE_POLICY,
  type ClientFrame,
  decodeClientFrame,
  MAX_FRAME_BYTES,
  type ResetDirective,
  SCOPE_RUNTIME_EXECUTE,
  SCOPE_SESSION_MANAGE,
  type StateCheckRequest,
  SUBPROTOCOL,
} from '../protocol/index.js';
import { type EmulatorContext, rateLimit } from './context.js';
import { TickCork } from '../util/tick-cork.js';
import { bump } from './stats.js';
import type { TokenGrant } from './tokens.js';

interface Connection {
  ws: WebSocket;
  tenant: string;
  botId: string;
  grant: TokenGrant;
  frames: number;
  closing: boolean;
  /** Answers waiting for their due time, in request order; held by `holdAfterSends`: due never. */
  queue: { due: number; text: string }[];
  timer: NodeJS.Timeout | undefined;
  /** Corks the TCP socket while a tick's answers are written. */
  cork: TickCork;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
};

/** Answers a refused upgrade with a plain HTTP response; the body never echoes the token. */
function refuse(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  const body = JSON.stringify({ error: { code, message } });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** A close reason is at most 123 bytes. */
function reason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -2);
  return out;
}

export class RuntimeDoor {
  readonly #ctx: EmulatorContext;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<Connection>();

  constructor(ctx: EmulatorContext) {
    this.#ctx = ctx;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      clientTracking: false,
      // Any Origin is accepted; the subprotocol is selected when offered.
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    ctx.onFaults = () => {
      if (ctx.faults.holdAfterSends !== 0) return;
      // The hold ended: what it held is due now (after the latency, if any), still in request order.
      const due = performance.now() + ctx.faults.latencyMs;
      for (const conn of this.#connections) {
        for (const queued of conn.queue) if (queued.due === Infinity) queued.due = due;
        this.#schedule(conn);
      }
    };
  }

  /** Handles an HTTP upgrade to `/ws/v1`: 400, 429, 401, 403, or 101. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const ctx = this.#ctx;
    socket.on('error', () => socket.destroy());
    const tenant = url.searchParams.get('tenant');
    const botId = url.searchParams.get('botId');
    if (tenant === null || tenant === '' || botId === null || botId === '') {
      bump(ctx.stats.handshakes, 400);
      refuse(socket, 400, 'CR_EMU_ERR_BAD_REQUEST', 'query parameters tenant and botId are required');
      return;
    }
    const wait = rateLimit(ctx, 'handshake', tenant, ctx.faults.handshakeRate);
    if (wait > 0) {
      bump(ctx.stats.handshakes, 429);
      refuse(socket, 429, 'CR_EMU_ERR_RATE_LIMITED', 'handshake rate limit exceeded', {
        'Retry-After': String(Math.max(1, Math.ceil(wait / 1000))),
      });
      return;
    }
    const grant = ctx.tokens.check(url.searchParams.get('token'));
    if (grant === undefined) {
      bump(ctx.stats.handshakes, 401);
      refuse(socket, 401, 'CR_EMU_ERR_UNAUTHORIZED', 'token unknown or expired');
      return;
    }
    if (!grant.scopes.has(SCOPE_RUNTIME_EXECUTE)) {
      bump(ctx.stats.handshakes, 403);
      refuse(socket, 403, 'CR_EMU_ERR_FORBIDDEN', `token lacks ${SCOPE_RUNTIME_EXECUTE}`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      bump(ctx.stats.handshakes, 101);
      this.#accept(ws, tenant, botId, grant);
    });
  }

  #accept(ws: WebSocket, tenant: string, botId: string, grant: TokenGrant): void {
    const stats = this.#ctx.stats;
    const conn: Connection = {
      ws,
      tenant,
      botId,
      grant,
      frames: 0,
      closing: false,
      queue: [],
      timer: undefined,
      cork: new TickCork(ws),
    };
    this.#connections.add(conn);
    stats.connectionsOpen++;
    stats.connectionsTotal++;
    ws.on('message', (data, isBinary) => this.#onFrame(conn, data as Buffer, isBinary));
    // ws closes with 1009 by itself when a frame exceeds maxPayload, and reports it here.
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      bump(stats.closes, code);
      stats.connectionsOpen--;
      conn.closing = true;
      if (conn.timer !== undefined) clearTimeout(conn.timer);
      this.#connections.delete(conn);
    });
  }

  #close(conn: Connection, code: number, text: string): void {
    if (conn.closing) return;
    // Like an engine that answers in order: the requests before the one that closes it are answered.
    if (conn.timer !== undefined) clearTimeout(conn.timer);
    conn.timer = undefined;
    for (const queued of conn.queue.splice(0)) this.#send(conn, queued.text);
    conn.closing = true;
    conn.ws.close(code, reason(text));
  }

  #drop(conn: Connection): void {
    if (conn.closing) return;
    conn.closing = true;
    this.#ctx.stats.drops++;
    conn.ws.terminate();
  }

  #onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    const ctx = this.#ctx;
    ctx.stats.framesIn++;
    if (conn.closing) return;
    conn.frames++;
    if (isBinary) {
      this.#close(
        conn,
        CLOSE_POLICY,
        'invalid directive: binary frames are not accepted (CR_ERR_PROTO_BINARY_FRAME)',
      );
      return;
    }
    const decoded = decodeClientFrame(data);
    if (!decoded.ok) {
      const { code, field, message } = decoded.error;
      this.#close(conn, CLOSE_POLICY, `invalid directive: ${field ?? message} (${code})`);
      return;
    }
    if (ctx.tokens.isExpired(conn.grant)) {
      this.#close(conn, CLOSE_POLICY, 'token expired (CR_ERR_AUTH_TOKEN_EXPIRED)');
      return;
    }
    const frame: ClientFrame = decoded.value;
    const answer = frame.type === 'SEND' ? this.#onSend(conn, frame) : this.#onQuery(conn, frame);
    if (answer === undefined) return;
    const { faults, random } = ctx;
    if (
      (faults.dropEveryFrames > 0 && conn.frames % faults.dropEveryFrames === 0) ||
      (faults.dropRate > 0 && random() < faults.dropRate)
    ) {
      // The request was processed but its answer is lost, the hardest case for a client.
      this.#drop(conn);
      return;
    }
    const hold = ctx.faults.holdAfterSends;
    this.#answer(conn, answer, frame.type === 'SEND' && hold > 0 && ctx.stats.sends > hold);
  }

  #onSend(conn: Connection, directive: ResetDirective): Record<string, unknown> | undefined {
    const ctx = this.#ctx;
    ctx.stats.sends++;
    if (!conn.grant.scopes.has(SCOPE_SESSION_MANAGE)) {
      this.#close(conn, CLOSE_POLICY, `token lacks ${SCOPE_SESSION_MANAGE}`);
      return undefined;
    }
    const session = ctx.store.get(directive.sessionId, conn.tenant, conn.botId);
    if (session?.engineError === true) {
      this.#close(conn, CLOSE_ENGINE_ERROR, 'engine error while resetting the session');
      return undefined;
    }
    const wait = rateLimit(ctx, 'message', conn.tenant, ctx.faults.messageRate);
    if (wait > 0) {
      bump(ctx.stats.answers, 'RATE_LIMITED');
      return this.#status(directive, 'RATE_LIMITED', { retryAfterMs: wait });
    }
    const result = ctx.store.applyReset(directive, conn.tenant, conn.botId);
    bump(ctx.stats.answers, result);
    if (result === 'RESET_COMPLETE') ctx.stats.resetsApplied++;
    return this.#status(
      directive,
      result,
      result === 'REJECTED' ? { reason: 'the engine refused to reset this session' } : {},
    );
  }

  #status(
    request: ClientFrame,
    status: string,
    extra: { retryAfterMs?: number; reason?: string },
  ): Record<string, unknown> {
    // Strict mode: the protocol's bare answer shapes only (retryAfterMs is part of RATE_LIMITED's).
    if (this.#ctx.strict) {
      return extra.retryAfterMs === undefined ? { status } : { status, retryAfterMs: extra.retryAfterMs };
    }
    return {
      status,
      ...extra,
      sessionId: request.sessionId,
      ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
    };
  }

  #onQuery(conn: Connection, query: StateCheckRequest): Record<string, unknown> {
    const ctx = this.#ctx;
    ctx.stats.queries++;
    const session = ctx.store.get(query.sessionId, conn.tenant, conn.botId);
    if (session === undefined) {
      bump(ctx.stats.answers, 'SESSION_NOT_FOUND');
      return this.#status(query, 'SESSION_NOT_FOUND', {});
    }
    bump(ctx.stats.answers, 'STATE');
    if (ctx.strict) return { flowState: session.flowState, variables: session.variables };
    return {
      flowState: session.flowState,
      variables: session.variables,
      dialogState: session.dialogState,
      engineState: session.engineState,
      historyLength: session.history.length,
      nluContext: session.nluContext,
      sessionId: session.sessionId,
      ...(query.requestId === undefined ? {} : { requestId: query.requestId }),
    };
  }

  /**
   * Sends an answer after the configured latency, never ahead of an earlier one; a `held` one waits
   * until the hold ends, and the answers behind it with it.
   */
  #answer(conn: Connection, answer: Record<string, unknown>, held: boolean): void {
    const text = JSON.stringify(answer);
    const latency = this.#ctx.faults.latencyMs;
    if (!held && latency <= 0 && conn.queue.length === 0) {
      this.#send(conn, text);
      return;
    }
    conn.queue.push({ due: held ? Infinity : performance.now() + latency, text });
    this.#schedule(conn);
  }

  #schedule(conn: Connection): void {
    if (conn.timer !== undefined || conn.queue.length === 0 || conn.queue[0]!.due === Infinity) return;
    const delay = Math.max(0, conn.queue[0]!.due - performance.now());
    conn.timer = setTimeout(() => {
      conn.timer = undefined;
      const now = performance.now();
      while (conn.queue.length > 0 && conn.queue[0]!.due <= now + 0.5)
        this.#send(conn, conn.queue.shift()!.text);
      this.#schedule(conn);
    }, delay);
  }

  #send(conn: Connection, text: string): void {
    if (conn.closing) return;
    this.#ctx.stats.answersOut++;
    // Pipelined requests arrive many to a read; corking until the tick ends writes their answers in one
    // syscall instead of one each (half the emulator's time went to writev before).
    conn.cork.cork();
    conn.ws.send(text);
  }

  /** Closes every connection with 1000 and waits until each has gone. */
  async close(): Promise<void> {
    const closed = [...this.#connections].map(
      (conn) =>
        new Promise<void>((resolve) => {
          conn.ws.once('close', () => resolve());
          if (conn.ws.readyState === conn.ws.CLOSED) resolve();
          this.#close(conn, CLOSE_NORMAL, 'emulator shutting down');
          // A peer that never answers the close frame is cut off.
          setTimeout(() => conn.ws.terminate(), 1000).unref();
        }),
    );
    await Promise.all(closed);
    this.#wss.close();
  }
}

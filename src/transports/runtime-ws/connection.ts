/**
 * One runtime WebSocket connection: the handshake (subprotocol, Origin, token), many requests in flight, answers
 * matched by the echoed `requestId` when the engine sends one and by order when it does not, a
 * keepalive, and every close turned into a coded error for each request still waiting.
 */
import { WebSocket } from 'ws';
import { CognigyResetError, isMarked } from '../../errors.js';
import { decodeAnswer, type EngineAnswer, MAX_ANSWER_BYTES, SUBPROTOCOL } from '../../protocol/index.js';
import { redactUrl } from '../../util/redact.js';
import { onAbort } from '../../util/on-abort.js';
import { TickCork } from '../../util/tick-cork.js';
import { answerTooBig, closeError, handshakeError } from './close-codes.js';

export interface ConnectionOptions {
  /** The dial URL with tenant and botId, without the token. */
  url: URL;
  token: string;
  origin: string;
  /** @default 10000 */
  handshakeTimeoutMs: number;
  /** @default 30000 */
  pingIntervalMs: number;
  /** No frame or pong for this long: the connection is dead. @default 60000 */
  deadAfterMs: number;
}

/** What an answer must be: a status (to a SEND) or a state or status (to a QUERY). */
export type Expect = 'status' | 'state';

interface Pending {
  requestId: string | undefined;
  /** The session the request is about: an answer that names another is not its answer. */
  sessionId: string;
  expect: Expect;
  /** Answered, failed, or given up on by its caller; a late answer is still consumed in order. */
  settled: boolean;
  deadline: number;
  timeoutMs: number;
  resolve(answer: EngineAnswer): void;
  reject(err: CognigyResetError): void;
  /** The caller's signal: aborting it fails the request. */
  signal: AbortSignal | undefined;
}

/** A signal the connection listens on once for all its requests that carry it. */
interface Watched {
  requests: number;
  unregister: () => void;
}

function aborted(): CognigyResetError {
  return new CognigyResetError('CR_ERR_RESET_ABORTED', 'the request was aborted');
}

export class RuntimeConnection {
  readonly token: string;
  readonly #ws: WebSocket;
  readonly #cork: TickCork;
  readonly #pending: Pending[] = [];
  readonly #keepalive: NodeJS.Timeout;
  readonly #closeListeners: ((err: CognigyResetError) => void)[] = [];
  readonly #signals = new Map<AbortSignal, Watched>();
  #lastSeen = Date.now();
  #closedWith: CognigyResetError | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweepAt = Infinity;
  /** Set while close() waits for the requests in flight. */
  #onDrained: (() => void) | undefined;

  private constructor(ws: WebSocket, opts: ConnectionOptions) {
    this.#ws = ws;
    this.#cork = new TickCork(ws);
    this.token = opts.token;
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('pong', () => (this.#lastSeen = Date.now()));
    ws.on('ping', () => (this.#lastSeen = Date.now()));
    // Every error is followed by 'close', which reports it. A frame past maxPayload is refused by ws itself
    // with 1009, and its close then reads 1006 (a drop, retried): it is what it is, too big, and not retried.
    let tooBig: CognigyResetError | undefined;
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') tooBig = answerTooBig(MAX_ANSWER_BYTES);
    });
    ws.on('close', (code, reason) => this.#onClose(tooBig ?? closeError(code, reason.toString('utf8'))));
    this.#keepalive = setInterval(() => {
      if (Date.now() - this.#lastSeen >= opts.deadAfterMs) {
        this.terminate(
          new CognigyResetError(
            'CR_ERR_TRANSPORT_DEAD',
            `no frame or pong for ${opts.deadAfterMs} ms: the connection is dead`,
          ),
        );
      } else if (ws.readyState === WebSocket.OPEN) {
        ws.ping();
      }
    }, opts.pingIntervalMs);
    this.#keepalive.unref();
  }

  /** Dials and completes the handshake, or rejects with a coded error that carries the HTTP status. */
  static open(opts: ConnectionOptions, signal?: AbortSignal): Promise<RuntimeConnection> {
    const dialUrl = new URL(opts.url);
    dialUrl.searchParams.set('token', opts.token);
    const where = redactUrl(opts.url);
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(dialUrl, SUBPROTOCOL, {
        origin: opts.origin,
        perMessageDeflate: false,
        maxPayload: MAX_ANSWER_BYTES,
        followRedirects: false,
      });
      const fail = (err: CognigyResetError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(err);
      };
      const onAbort = (): void =>
        fail(new CognigyResetError('CR_ERR_RESET_ABORTED', `dial to ${where} was aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () =>
          fail(
            new CognigyResetError(
              'CR_ERR_TRANSPORT_HANDSHAKE_TIMEOUT',
              `${where} did not complete the handshake within ${opts.handshakeTimeoutMs} ms`,
            ),
          ),
        opts.handshakeTimeoutMs,
      );
      timer.unref();
      ws.once('unexpected-response', (req, res) => {
        const retryAfter: string | string[] | undefined = res.headers['retry-after'];
        res.resume();
        req.destroy();
        fail(
          handshakeError(
            res.statusCode ?? 0,
            typeof retryAfter === 'string' ? retryAfter : retryAfter?.[0],
            where,
            res.headers.location,
          ),
        );
      });
      ws.once('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? '';
        if (/^E[A-Z]+/.test(code)) {
          fail(
            new CognigyResetError('CR_ERR_TRANSPORT_CONNECT', `cannot reach ${where} (${code})`, {
              cause: err,
            }),
          );
        } else {
          // ws's own handshake checks (a missing or wrong subprotocol, a bad accept key): never echo the URL.
          const why = err.message.includes('subprotocol')
            ? 'the engine did not select cognigy-runtime-v1'
            : 'invalid handshake';
          fail(new CognigyResetError('CR_ERR_TRANSPORT_HANDSHAKE', `${where}: ${why}`, { cause: err }));
        }
      });
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        ws.removeAllListeners();
        resolve(new RuntimeConnection(ws, opts));
      });
    });
  }

  /** Requests sent and not yet answered (including ones whose caller gave up). */
  get inFlight(): number {
    return this.#pending.length;
  }

  get isOpen(): boolean {
    return this.#closedWith === undefined && this.#ws.readyState === WebSocket.OPEN;
  }

  onClose(listener: (err: CognigyResetError) => void): void {
    if (this.#closedWith !== undefined) listener(this.#closedWith);
    else this.#closeListeners.push(listener);
  }

  /**
   * Sends one encoded frame and resolves with its answer. A caller that gives up (timeout) fails the
   * connection: answers come in order, so one missing answer would hold up every request behind it.
   */
  request(
    text: string,
    sessionId: string,
    requestId: string | undefined,
    expect: Expect,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<EngineAnswer> {
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith);
    if (signal?.aborted === true) return Promise.reject(aborted());
    return new Promise<EngineAnswer>((resolve, reject) => {
      const entry: Pending = {
        requestId,
        sessionId,
        expect,
        settled: false,
        deadline: Date.now() + timeoutMs,
        timeoutMs,
        resolve,
        reject,
        signal,
      };
      if (signal !== undefined) this.#watch(signal);
      this.#pending.push(entry);
      this.#arm(entry.deadline);
      this.#cork.cork();
      this.#ws.send(text);
    });
  }

  /** Settles a request once: with an answer, or with a coded error. */
  #settle(entry: Pending, outcome: EngineAnswer | CognigyResetError): void {
    if (entry.settled) return;
    entry.settled = true;
    if (entry.signal !== undefined) this.#unwatch(entry.signal);
    if (outcome instanceof CognigyResetError) entry.reject(outcome);
    else entry.resolve(outcome);
  }

  /**
   * One abort listener per signal for all the requests that carry it (a bulk run shares one signal among
   * all its requests), counted, so a request costs no closure of its own.
   */
  #watch(signal: AbortSignal): void {
    let watched = this.#signals.get(signal);
    if (watched === undefined) {
      watched = {
        requests: 0,
        unregister: onAbort(signal, () => {
          for (const entry of this.#pending) if (entry.signal === signal) this.#settle(entry, aborted());
        }),
      };
      this.#signals.set(signal, watched);
    }
    watched.requests++;
  }

  #unwatch(signal: AbortSignal): void {
    const watched = this.#signals.get(signal);
    if (watched === undefined || --watched.requests > 0) return;
    watched.unregister();
    this.#signals.delete(signal);
  }

  /**
   * One deadline timer per connection instead of one per request: it fires at the earliest deadline
   * armed, fails an expired request, and re-arms for the next one.
   */
  #arm(deadline: number): void {
    if (deadline >= this.#sweepAt) return;
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    this.#sweepAt = deadline;
    this.#sweepTimer = setTimeout(() => this.#sweep(), Math.max(0, deadline - Date.now()));
    this.#sweepTimer.unref();
  }

  #sweep(): void {
    this.#sweepTimer = undefined;
    this.#sweepAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const entry of this.#pending) {
      if (entry.settled) continue;
      if (entry.deadline <= now) {
        // Answers are ordered: with this one missing, none behind it can arrive. Reset the connection.
        this.#settle(
          entry,
          new CognigyResetError('CR_ERR_RESET_ACK_TIMEOUT', `no answer within ${entry.timeoutMs} ms`),
        );
        this.terminate(
          new CognigyResetError(
            'CR_ERR_TRANSPORT_DROPPED',
            'connection reset: a request on it went unanswered past its deadline',
          ),
        );
        return;
      }
      if (entry.deadline < next) next = entry.deadline;
    }
    if (next !== Infinity) this.#arm(next);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.#lastSeen = Date.now();
    const decoded = isBinary
      ? {
          ok: false as const,
          error: new CognigyResetError('CR_ERR_PROTO_BAD_ANSWER', 'engine sent a binary frame'),
        }
      : decodeAnswer(data);
    const head = this.#pending[0];
    if (head === undefined) {
      this.terminate(
        new CognigyResetError('CR_ERR_PROTO_UNSOLICITED', 'engine sent a frame when no request was waiting'),
      );
      return;
    }
    if (!decoded.ok) {
      // One answer per request, in order: a broken answer still belongs to the oldest request.
      this.#pending.shift();
      this.#settle(head, decoded.error);
      if (this.#pending.length === 0) this.#onDrained?.();
      return;
    }
    const answer = decoded.value;
    if (
      answer.requestId !== undefined &&
      head.requestId !== undefined &&
      answer.requestId !== head.requestId
    ) {
      this.terminate(
        new CognigyResetError(
          'CR_ERR_PROTO_ANSWER_MISMATCH',
          "engine answered out of order (the echoed requestId is not the oldest request's)",
        ),
      );
      return;
    }
    this.#pending.shift();
    this.#settle(head, mismatch(head, answer) ?? answer);
    if (this.#pending.length === 0) this.#onDrained?.();
  }

  #onClose(err: CognigyResetError): void {
    if (this.#closedWith !== undefined) return;
    this.#closedWith = err;
    clearInterval(this.#keepalive);
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    const pending = this.#pending.splice(0);
    // A close one request caused (an invalid directive, a frame too big, an engine error on one session;
    // the catalogue marks them). A close about the connection itself (credentials, expiry, a drop) fails
    // every request alike.
    if (isMarked(err.code, 'blamesOneRequest')) {
      // Answers come in order, so the close was caused by the oldest unanswered request: it alone gets
      // the close's code. The engine never processed the requests behind it; they are retried.
      if (pending[0] !== undefined) this.#settle(pending[0], err);
      const behind = new CognigyResetError(
        'CR_ERR_TRANSPORT_DROPPED',
        `the connection closed (${err.closeCode ?? '?'}) for an earlier request on it; this one is sent again`,
        err.closeCode === undefined ? {} : { closeCode: err.closeCode },
      );
      for (const entry of pending.slice(1)) this.#settle(entry, behind);
      // A request that still finds this connection is not to blame either.
      this.#closedWith = behind;
    } else {
      for (const entry of pending) this.#settle(entry, err);
    }
    this.#onDrained?.();
    for (const listener of this.#closeListeners.splice(0)) listener(err);
  }

  /** Cuts the connection at once; every waiting request fails with `err`. */
  terminate(err: CognigyResetError): void {
    this.#onClose(err);
    this.#ws.terminate();
  }

  /** Closes with 1000 after the requests in flight are answered or `graceMs` passes. */
  async close(graceMs = 5000): Promise<void> {
    if (this.#pending.length > 0 && this.#closedWith === undefined) {
      // Woken by the last answer (or by the connection closing), at the latest after graceMs.
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#onDrained = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
      this.#onDrained = undefined;
    }
    const err = new CognigyResetError('CR_ERR_TRANSPORT_CLOSED', 'the client was closed');
    if (this.#closedWith === undefined) {
      const closed = new Promise<void>((resolve) => this.#ws.once('close', () => resolve()));
      this.#onClose(err);
      this.#ws.close(1000, 'client closing');
      const timer = setTimeout(() => this.#ws.terminate(), 1000);
      timer.unref();
      await closed;
      clearTimeout(timer);
    }
  }
}

/** Why an answer in a request's place is not its answer: a state for a directive, another session's. */
function mismatch(head: Pending, answer: EngineAnswer): CognigyResetError | undefined {
  if (head.expect === 'status' && answer.kind !== 'status')
    return new CognigyResetError(
      'CR_ERR_PROTO_ANSWER_MISMATCH',
      'engine answered a reset directive with a state',
    );
  if (answer.sessionId !== undefined && answer.sessionId !== head.sessionId)
    return new CognigyResetError(
      'CR_ERR_PROTO_ANSWER_MISMATCH',
      "engine answered about another session (the echoed sessionId is not the request's)",
    );
  return undefined;
}

/**
 * The Cognigy Socket transport (the Socket endpoint `@cognigy/socket-client` speaks): resets a session's flow position through a Socket.IO
 * endpoint. Per session: connect with its sessionId, userId and the endpoint's URLToken (query values
 * URL-encoded, as the official client sends them) at `<prefix>/socket.io`, wait for `endpoint-ready`
 * (Cognigy.AI 4.79 and later; an older tenant never sends it, so after a short wait it goes on), emit
 * `processInput` with `resetFlow: true` (optionally with a first text or data), and count the reset as
 * applied when `finalPing` arrives within the deadline, as an event or as an `output` of type `finalPing`.
 *
 * Each `processInput` with `resetFlow` starts the Flow once more, with its outputs and analytics, so it is
 * sent at most once per reset: what fails before it was sent (a refused or dropped connection) is retried;
 * once it was sent, a missing answer is `CR_ERR_RESET_UNCONFIRMED` and an error answer is final. Only the
 * flow position is cleared, and nothing can be read back, nor whether the session existed (a new sessionId
 * starts a new conversation): every outcome says `verified: false`.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { CognigyResetError } from '../../errors.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, waitToRetry } from '../../model/retry-policy.js';
import type { Layer, ResetPlan } from '../../model/plan.js';
import type { SessionTarget, TargetField } from '../../model/target.js';
import { checkedUrl } from '../../util/loopback.js';
import { onAbort } from '../../util/on-abort.js';
import { TargetStyleTransport, type TargetResetOptions } from '../target-style.js';
import type { ReadBack, RequestOptions } from '../transport.js';
import { frameTooBig, outputError, SOCKET_FRAME_MAX, unconfirmed } from './answer-errors.js';
import { type SocketEndpoint, socketEndpoint } from './endpoint-url.js';

/** How long to wait for `endpoint-ready` before sending anyway (tenants before 4.79 never send it). */
export const DEFAULT_READY_WAIT_MS = 2000;

export interface SocketTransportOptions {
  /** The endpoint URL, e.g. `https://endpoint-trial.cognigy.ai/<URLToken>` or its origin. */
  endpointUrl: string;
  /** The endpoint's URLToken (env `COGNIGY_URL_TOKEN`). */
  urlToken: string;
  /** A first input for the restarted Flow. @default none */
  text?: string | undefined;
  data?: Record<string, unknown> | undefined;
  /** @default DEFAULT_RETRY_POLICY */
  retry?: RetryPolicy;
  /** @default false */
  allowInsecure?: boolean;
  /** How long to wait for `endpoint-ready` after connecting before sending anyway. @default 2000 */
  readyWaitMs?: number;
}

/** Where one attempt got to: whether `processInput` went out on the wire. */
interface Attempt {
  sent: boolean;
}

export class CognigySocketTransport extends TargetStyleTransport {
  readonly name = 'cognigy-socket';
  readonly capabilities: ReadonlySet<Layer> = new Set<Layer>(['flow']);
  readonly #endpoint: SocketEndpoint;
  readonly #where: string;
  readonly #o: SocketTransportOptions;
  readonly #retry: RetryPolicy;
  readonly #open = new Set<Socket>();

  constructor(options: SocketTransportOptions) {
    super();
    const url = checkedUrl(
      options.endpointUrl,
      'endpointUrl',
      ['https', 'http', 'wss', 'ws'],
      options.allowInsecure ?? false,
    );
    if (options.urlToken === '') {
      throw new CognigyResetError('CR_ERR_AUTH_NO_TOKEN', 'no URLToken: set COGNIGY_URL_TOKEN');
    }
    this.#endpoint = socketEndpoint(url, options.urlToken);
    this.#where = this.#endpoint.where;
    this.#o = options;
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
  }

  requiredFields(): TargetField[] {
    return ['userId'];
  }

  #payload(target: SessionTarget): Record<string, unknown> {
    return {
      URLToken: this.#o.urlToken,
      userId: target.userId,
      sessionId: target.sessionId,
      channel: 'cognigy-reset',
      source: 'device',
      resetFlow: true,
      ...(this.#o.text === undefined ? {} : { text: this.#o.text }),
      ...(this.#o.data === undefined ? {} : { data: this.#o.data }),
    };
  }

  describe(target: SessionTarget): unknown {
    return {
      transport: this.name,
      endpoint: this.#where,
      emit: 'processInput',
      payload: { ...this.#payload(target), URLToken: '[REDACTED]' },
    };
  }

  async resetTarget(target: SessionTarget, _plan: ResetPlan, options: TargetResetOptions): Promise<ReadBack> {
    for (let attempt = 1; ; attempt++) {
      const state: Attempt = { sent: false };
      try {
        await this.#once(target, options, state);
        // Neither the flow position nor the session's existence can be read back.
        return { verified: false, notVerified: ['flow'] };
      } catch (err) {
        // Sent once is sent: sending again would start the Flow once more.
        if (state.sent) throw unconfirmed(err, this.#where);
        await waitToRetry(err, attempt, { policy: this.#retry, ...options });
      }
    }
  }

  /**
   * One connection: endpoint-ready (or the ready wait), processInput with resetFlow, finalPing. Each phase
   * has the deadline: connecting and the wait for endpoint-ready, then the answer.
   */
  #once(target: SessionTarget, options: RequestOptions, state: Attempt): Promise<void> {
    return new Promise((resolve, reject) => {
      // `maxPayload` is handed to `ws` by Engine.IO, though its option types do not list it.
      const ioOptions: Partial<ManagerOptions & SocketOptions> & { maxPayload: number } = {
        path: this.#endpoint.path,
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        timeout: options.timeoutMs,
        // A frame past the bound closes the connection (1009) before it is buffered whole.
        maxPayload: SOCKET_FRAME_MAX,
        query: {
          sessionId: encodeURIComponent(target.sessionId),
          urlToken: encodeURIComponent(this.#o.urlToken),
          userId: encodeURIComponent(target.userId ?? ''),
          testMode: 'false',
          emitWithAck: 'false',
        },
      };
      const socket = io(this.#endpoint.origin, ioOptions);
      this.#open.add(socket);
      const finish = (err?: CognigyResetError): void => {
        clearTimeout(timer);
        clearTimeout(readyWait);
        unregister();
        this.#open.delete(socket);
        socket.removeAllListeners();
        socket.disconnect();
        if (err === undefined) resolve();
        else reject(err);
      };
      const expire = (): void =>
        finish(
          new CognigyResetError(
            'CR_ERR_TRANSPORT_SOCKET_TIMEOUT',
            `${this.#where}: ${state.sent ? 'no finalPing' : 'not connected'} within ${options.timeoutMs} ms`,
          ),
        );
      let timer = setTimeout(expire, options.timeoutMs);
      timer.unref();
      let readyWait: NodeJS.Timeout | undefined;
      const send = (): void => {
        if (state.sent) return;
        clearTimeout(readyWait);
        state.sent = true;
        clearTimeout(timer);
        timer = setTimeout(expire, options.timeoutMs);
        timer.unref();
        socket.emit('processInput', this.#payload(target));
      };
      const unregister = onAbort(options.signal, () =>
        finish(new CognigyResetError('CR_ERR_RESET_ABORTED', 'the reset was aborted')),
      );
      socket.on(
        'connect_error',
        (err: Error & { data?: { code?: unknown; retryAfterMs?: unknown }; description?: unknown }) => {
          const code = err.data?.code;
          if (frameTooBig(err.description)) {
            finish(frameTooBig.error(this.#where));
          } else if (code === 401) {
            finish(
              new CognigyResetError('CR_ERR_AUTH_UNAUTHORIZED', `${this.#where} refused the URLToken`, {
                status: 401,
              }),
            );
          } else if (code === 403) {
            finish(
              new CognigyResetError(
                'CR_ERR_AUTH_FORBIDDEN',
                `${this.#where} refused the connection: the endpoint is disabled`,
                { status: 403 },
              ),
            );
          } else if (code === 429) {
            const retryAfterMs =
              typeof err.data?.retryAfterMs === 'number' ? err.data.retryAfterMs : undefined;
            finish(
              new CognigyResetError(
                'CR_ERR_TRANSPORT_RATE_LIMITED',
                `${this.#where} refused the connection: too many connections`,
                {
                  status: 429,
                  ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
                },
              ),
            );
          } else {
            finish(
              new CognigyResetError('CR_ERR_TRANSPORT_SOCKET_CONNECT', `cannot connect to ${this.#where}`, {
                cause: err,
              }),
            );
          }
        },
      );
      socket.on('disconnect', (reason: string, details?: unknown) => {
        if (frameTooBig((details as { description?: unknown } | undefined)?.description))
          finish(frameTooBig.error(this.#where));
        else if (reason !== 'io client disconnect') {
          finish(
            new CognigyResetError(
              'CR_ERR_TRANSPORT_DROPPED',
              `${this.#where} dropped the connection (${reason})`,
            ),
          );
        }
      });
      socket.on('connect', () => {
        // Tenants before 4.79 never emit endpoint-ready: after a short wait, send anyway.
        readyWait = setTimeout(
          send,
          Math.min(this.#o.readyWaitMs ?? DEFAULT_READY_WAIT_MS, options.timeoutMs / 2),
        );
        readyWait.unref();
      });
      socket.once('endpoint-ready', send);
      socket.on(
        'output',
        (reply: { type?: unknown; data?: { code?: unknown; error?: unknown } }, ack?: () => void) => {
          if (typeof ack === 'function') ack();
          // Older endpoints send the end of the answer as an output of type finalPing.
          if (reply?.type === 'finalPing') {
            if (state.sent) finish();
            return;
          }
          if (reply?.type !== 'error') return;
          const code = reply.data?.code;
          const message =
            typeof reply.data?.error === 'string' ? reply.data.error.slice(0, 200) : 'error output';
          finish(outputError(code, `${this.#where}: ${message}`));
        },
      );
      socket.on('exception', (error: { message?: unknown }) => {
        const message = typeof error?.message === 'string' ? error.message.slice(0, 200) : 'exception';
        finish(new CognigyResetError('CR_ERR_TRANSPORT_SOCKET_ERROR', `${this.#where}: ${message}`));
      });
      socket.on('finalPing', (_reply: unknown, ack?: () => void) => {
        if (typeof ack === 'function') ack();
        if (state.sent) finish();
      });
    });
  }

  close(): Promise<void> {
    for (const socket of this.#open) socket.disconnect();
    this.#open.clear();
    return Promise.resolve();
  }
}

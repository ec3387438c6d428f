/**
 * The Cognigy Socket transport (the Socket endpoint `@cognigy/socket-client` speaks): resets a session's flow position through a Socket.IO
 * endpoint. Per session: connect with its sessionId, userId and the endpoint's URLToken (query values
 * URL-encoded, as the official client sends them), wait for `endpoint-ready`, emit `processInput` with
 * `resetFlow: true` (optionally with a first text or data), and count the reset as applied when
 * `finalPing` arrives within the deadline. `error` outputs and `exception` events become coded errors.
 * Only the flow position is cleared, and nothing can be read back: every outcome says so.
 */
import { io, type Socket } from 'socket.io-client';
import { CognigyResetError } from '../../errors.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, waitToRetry } from '../../reset/retry-policy.js';
import type { Layer, ResetPlan } from '../../reset/plan.js';
import { checkedUrl } from '../../util/loopback.js';
import { onAbort } from '../../util/on-abort.js';
import { redactUrl } from '../../util/redact.js';
import type {
  RequestOptions,
  SessionTarget,
  TargetField,
  TargetResetResult,
  Transport,
} from '../transport.js';

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
}

export class CognigySocketTransport implements Transport {
  readonly name = 'cognigy-socket';
  readonly capabilities: ReadonlySet<Layer> = new Set<Layer>(['flow']);
  readonly #origin: string;
  readonly #where: string;
  readonly #o: SocketTransportOptions;
  readonly #retry: RetryPolicy;
  readonly #open = new Set<Socket>();

  constructor(options: SocketTransportOptions) {
    const url = checkedUrl(
      options.endpointUrl,
      '--endpoint-url',
      ['https', 'http', 'wss', 'ws'],
      options.allowInsecure ?? false,
    );
    if (options.urlToken === '') {
      throw new CognigyResetError('CR_ERR_AUTH_NO_TOKEN', 'no URLToken: set COGNIGY_URL_TOKEN');
    }
    this.#origin = url.origin.replace(/^ws/, 'http');
    this.#where = redactUrl(this.#origin);
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

  async resetTarget(
    target: SessionTarget,
    _plan: ResetPlan,
    options: RequestOptions & { verify: boolean },
  ): Promise<TargetResetResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#once(target, options);
        return { verified: false, notVerified: ['flow'] };
      } catch (err) {
        await waitToRetry(err, attempt, { policy: this.#retry, ...options });
      }
    }
  }

  /** One connection: endpoint-ready, processInput with resetFlow, finalPing, within the deadline. */
  #once(target: SessionTarget, options: RequestOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = io(this.#origin, {
        path: '/socket.io/',
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        timeout: options.timeoutMs,
        query: {
          sessionId: encodeURIComponent(target.sessionId),
          urlToken: encodeURIComponent(this.#o.urlToken),
          userId: encodeURIComponent(target.userId ?? ''),
          testMode: 'false',
          emitWithAck: 'false',
        },
      });
      this.#open.add(socket);
      let sent = false;
      const finish = (err?: CognigyResetError): void => {
        clearTimeout(timer);
        unregister();
        this.#open.delete(socket);
        socket.removeAllListeners();
        socket.disconnect();
        if (err === undefined) resolve();
        else reject(err);
      };
      const timer = setTimeout(
        () =>
          finish(
            new CognigyResetError(
              'CR_ERR_TRANSPORT_SOCKET_TIMEOUT',
              `${this.#where}: no ${sent ? 'finalPing' : 'endpoint-ready'} within ${options.timeoutMs} ms`,
            ),
          ),
        options.timeoutMs,
      );
      timer.unref();
      const unregister = onAbort(options.signal, () =>
        finish(new CognigyResetError('CR_ERR_RESET_ABORTED', 'the reset was aborted')),
      );
      socket.on('connect_error', (err: Error & { data?: { code?: unknown; retryAfterMs?: unknown } }) => {
        const code = err.data?.code;
        if (code === 401) {
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
          const retryAfterMs = typeof err.data?.retryAfterMs === 'number' ? err.data.retryAfterMs : undefined;
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
      });
      socket.on('disconnect', (reason: string) => {
        if (reason !== 'io client disconnect') {
          finish(
            new CognigyResetError(
              'CR_ERR_TRANSPORT_DROPPED',
              `${this.#where} dropped the connection (${reason})`,
            ),
          );
        }
      });
      socket.once('endpoint-ready', () => {
        sent = true;
        socket.emit('processInput', this.#payload(target));
      });
      socket.on(
        'output',
        (reply: { type?: unknown; data?: { code?: unknown; error?: unknown } }, ack?: () => void) => {
          if (typeof ack === 'function') ack();
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
        if (sent) finish();
      });
    });
  }

  close(): Promise<void> {
    for (const socket of this.#open) socket.disconnect();
    this.#open.clear();
    return Promise.resolve();
  }
}

/** An `error` output: 1002 is an unknown session, 1008 an internal error (retried), anything else final. */
function outputError(code: unknown, message: string): CognigyResetError {
  if (code === 1002) {
    return new CognigyResetError('CR_ERR_RESET_SESSION_NOT_FOUND', `${message} (Cognigy code 1002)`, {
      cognigyCode: 1002,
    });
  }
  if (code === 1008) {
    return new CognigyResetError('CR_ERR_TRANSPORT_SOCKET_SERVER', `${message} (Cognigy code 1008)`, {
      cognigyCode: 1008,
    });
  }
  return new CognigyResetError(
    'CR_ERR_TRANSPORT_SOCKET_ERROR',
    message,
    typeof code === 'number' ? { cognigyCode: code } : {},
  );
}

/**
 * The runtime WebSocket transport: a pool of connections, each with many requests in flight. Connections
 * are dialled lazily and replaced when they drop; a 401 (at the handshake, or after the engine closed a
 * connection because the token expired) triggers one shared token refresh and one redial.
 */
import { CognigyResetError } from '../../errors.js';
import {
  compileDirective,
  DEAD_AFTER_MS,
  DEFAULT_ORIGIN,
  encodeFrame,
  type EngineAnswer,
  HANDSHAKE_TIMEOUT_MS,
  PING_INTERVAL_MS,
  stateCheck,
  type StatusAnswer,
} from '../../protocol/index.js';
import { LAYERS, type Layer, type ResetPlan } from '../../model/plan.js';
import type { SessionTarget } from '../../model/target.js';
import { BackoffGate } from '../../util/backoff-gate.js';
import { MAX_RETRY_AFTER_MS } from '../../util/retry-after.js';
import type { TokenProvider } from '../auth/token-provider.js';
import type {
  PrepareOptions,
  PreparedReset,
  RequestOptions,
  ResetExchange,
  ResetOptions,
  TargetField,
  Transport,
} from '../transport.js';
import { type ConnectionOptions, type Expect, RuntimeConnection } from './connection.js';

export interface RuntimeWsOptions {
  /** The dial URL from `runtimeDialUrl` (tenant and botId set, no token). */
  url: URL;
  tokens: TokenProvider;
  /** Connections in the pool (with `inUse`, the most it may grow to). @default 4 */
  connections?: number;
  /**
   * How many of the pool's connections to spread requests over now (say, following an in-flight limit);
   * the others finish what they carry and sit idle until it grows again. @default all of them
   */
  inUse?: (() => number) | undefined;
  /** @default 'https://api.cognigy.com' */
  origin?: string;
  /** @default 10000 */
  handshakeTimeoutMs?: number;
  /** @default 30000 */
  pingIntervalMs?: number;
  /** @default 60000 */
  deadAfterMs?: number;
  /** Shared with the reset pipeline, so a 429 at a handshake slows every request. */
  gate?: BackoffGate;
}

interface Slot {
  conn: RuntimeConnection | undefined;
  dialing: Promise<RuntimeConnection> | undefined;
}

export class RuntimeWsTransport implements Transport {
  readonly name = 'runtime-ws';
  readonly capabilities: ReadonlySet<Layer> = new Set(LAYERS);

  requiredFields(): TargetField[] {
    return [];
  }
  readonly #opts: Omit<ConnectionOptions, 'token'>;
  readonly #tokens: TokenProvider;
  readonly #gate: BackoffGate;
  readonly #slots: Slot[];
  readonly #inUse: (() => number) | undefined;
  #closed = false;
  /** Counters a caller can show: dials, refused handshakes, drops. */
  readonly counters = { dials: 0, redials: 0, refreshes: 0, closes: 0 };

  constructor(options: RuntimeWsOptions) {
    this.#opts = {
      url: options.url,
      origin: options.origin ?? DEFAULT_ORIGIN,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      pingIntervalMs: options.pingIntervalMs ?? PING_INTERVAL_MS,
      deadAfterMs: options.deadAfterMs ?? DEAD_AFTER_MS,
    };
    this.#tokens = options.tokens;
    this.#gate = options.gate ?? new BackoffGate();
    const size = Math.max(1, Math.floor(options.connections ?? 4));
    this.#slots = Array.from({ length: size }, () => ({ conn: undefined, dialing: undefined }));
    this.#inUse = options.inUse;
  }

  /** The SEND frame, compiled and validated: a directive that breaks an engine constraint is never sent. */
  prepare(target: SessionTarget, plan: ResetPlan, options: PrepareOptions): PreparedReset {
    const { directive, text } = compileDirective(target.sessionId, plan, options);
    return { target, plan, shown: directive, text, requestId: options.requestId };
  }

  /**
   * The directive, and with `checkRequestId` a state check behind it on the same connection: answers
   * come in that order, so the check sees the reset applied without waiting a round trip for the ack.
   */
  reset(prepared: PreparedReset, options: ResetOptions): ResetExchange {
    const conn = this.#pick(options.signal);
    const check = options.checkRequestId;
    // On a dial, both callbacks run in registration order on the same connection: the SEND goes first.
    return {
      ack: this.#on(
        conn,
        prepared.text,
        prepared.target.sessionId,
        prepared.requestId,
        'status',
        options,
      ) as Promise<StatusAnswer>,
      state:
        check === undefined
          ? undefined
          : this.#on(
              conn,
              encodeFrame(stateCheck(prepared.target.sessionId, check)),
              prepared.target.sessionId,
              check,
              'state',
              options,
            ),
      retriesInside: false,
    };
  }

  check(sessionId: string, requestId: string | undefined, options: RequestOptions): Promise<EngineAnswer> {
    const text = encodeFrame(stateCheck(sessionId, requestId));
    return this.#on(this.#pick(options.signal), text, sessionId, requestId, 'state', options);
  }

  /** Sends on the connection `#pick` chose: at once when it is open, once dialled otherwise. */
  #on(
    conn: RuntimeConnection | Promise<RuntimeConnection>,
    text: string,
    sessionId: string,
    requestId: string | undefined,
    expect: Expect,
    options: RequestOptions,
  ): Promise<EngineAnswer> {
    if (conn instanceof RuntimeConnection)
      return conn.request(text, sessionId, requestId, expect, options.timeoutMs, options.signal);
    return conn.then((c) => c.request(text, sessionId, requestId, expect, options.timeoutMs, options.signal));
  }

  /**
   * The least loaded open connection when it is idle or every slot is taken; otherwise a dial into an
   * empty slot (one dial per slot, shared by the callers that wait for it), so the load spreads over fresh
   * connections — after a drop too — instead of piling onto the survivors. An open connection is returned
   * as such, so the caller sends on it in the same tick and the next pick sees it busy.
   */
  #pick(signal?: AbortSignal): RuntimeConnection | Promise<RuntimeConnection> {
    if (this.#closed) {
      return Promise.reject(new CognigyResetError('CR_ERR_TRANSPORT_CLOSED', 'the client was closed'));
    }
    let best: RuntimeConnection | undefined;
    let empty: Slot | undefined;
    const slots = this.#slots;
    const n = this.#inUse === undefined ? slots.length : Math.max(1, Math.min(slots.length, this.#inUse()));
    for (let i = 0; i < n; i++) {
      const slot = slots[i]!;
      const conn = slot.conn;
      if (conn?.isOpen === true) {
        if (best === undefined || conn.inFlight < best.inFlight) best = conn;
      } else if (empty === undefined || (empty.dialing === undefined && slot.dialing !== undefined)) {
        empty = slot;
      }
    }
    if (best !== undefined && (best.inFlight === 0 || empty === undefined)) return best;
    return this.#ensure(empty!, signal);
  }

  /** Opens every connection now (optional: requests dial lazily). Fails fast on 401/403. */
  async warm(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.#slots.map((slot) => this.#ensure(slot, signal)));
  }

  #ensure(slot: Slot, signal?: AbortSignal): Promise<RuntimeConnection> {
    if (slot.conn?.isOpen === true) return Promise.resolve(slot.conn);
    slot.dialing ??= this.#dial(signal)
      .then((conn) => {
        slot.conn = conn;
        conn.onClose(() => {
          this.counters.closes++;
          if (slot.conn === conn) slot.conn = undefined;
        });
        return conn;
      })
      .finally(() => {
        slot.dialing = undefined;
      });
    return slot.dialing;
  }

  async #dial(signal?: AbortSignal): Promise<RuntimeConnection> {
    await this.#gate.wait(signal);
    const token = await this.#tokens.get(signal);
    this.counters.dials++;
    try {
      return await RuntimeConnection.open({ ...this.#opts, token }, signal);
    } catch (err) {
      if (
        err instanceof CognigyResetError &&
        err.code === 'CR_ERR_AUTH_UNAUTHORIZED' &&
        this.#tokens.refreshable
      ) {
        const fresh = await this.#tokens.refresh(token, signal);
        this.counters.refreshes++;
        this.counters.redials++;
        // One refresh, one redial: a second 401 is final.
        return RuntimeConnection.open({ ...this.#opts, token: fresh }, signal);
      }
      if (err instanceof CognigyResetError && err.code === 'CR_ERR_TRANSPORT_RATE_LIMITED') {
        // Past the bound, the request fails (the pipeline's retry policy says so); the job is not held.
        if ((err.retryAfterMs ?? 0) <= MAX_RETRY_AFTER_MS) this.#gate.pause(err.retryAfterMs ?? 1000);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#slots.map(async (slot) => {
        const conn = slot.conn ?? (await slot.dialing?.catch(() => undefined));
        await conn?.close();
      }),
    );
  }
}

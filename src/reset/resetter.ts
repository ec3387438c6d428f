/**
 * The library's front door: `createResetter(options)` wires a transport, the plan and the pipeline.
 *
 * ```ts
 * const resetter = createResetter({ url, tenant, botId, token, analytics: (id, ms, ok) => … });
 * const outcome = await resetter.reset('session-42');
 * for await (const o of resetter.resetMany(ids, { concurrency: 32 })) console.log(o);
 * await resetter.close();
 * ```
 */
import { CognigyResetError } from '../errors.js';
import { DEFAULT_WS_URL } from '../protocol/index.js';
import { OAuth2TokenProvider, type OAuth2Options } from '../transports/auth/oauth2.js';
import { StaticTokenProvider, type TokenProvider } from '../transports/auth/token-provider.js';
import { createTransport } from '../transports/create.js';
import type { Transport } from '../transports/transport.js';
import { BackoffGate } from '../util/backoff-gate.js';
import { type BulkOptions, type BulkSource, type BulkSummary, type BulkTarget, runBulk } from './bulk.js';
import type { ResetOutcome } from './outcome.js';
import { DEFAULT_RETRY_POLICY } from '../model/retry-policy.js';
import { planReset, type PlanOptions, type ResetPlan } from '../model/plan.js';
import { type PipelineOptions, type ResetCallOptions, ResetPipeline } from './pipeline.js';

export interface ResetterOptions extends Omit<PipelineOptions, 'transport' | 'plan' | 'gate'> {
  /** Engine base or ws URL. @default 'wss://api.cognigy.com/ws/v1' */
  url?: string;
  tenant?: string;
  botId?: string;
  /** A static token. */
  token?: string;
  /** OAuth2: refreshes on 401 and before expiry. */
  oauth2?: OAuth2Options;
  /** Any other token source. */
  tokens?: TokenProvider;
  /** Connections in the pool. @default 4 */
  connections?: number;
  /** Allow plain ws:// to a host that is not loopback. @default false */
  allowInsecure?: boolean;
  /** @default 'https://api.cognigy.com' */
  origin?: string;
  /** @default 10000 */
  handshakeTimeoutMs?: number;
  /** @default 30000 */
  pingIntervalMs?: number;
  /** @default 60000 */
  deadAfterMs?: number;
  /** What to clear. @default every layer */
  plan?: PlanOptions;
  /** Use this transport instead of dialling the runtime WebSocket API (see `createTransport`). */
  transport?: Transport;
  /** The pause a "slow down" answer puts on every request; share it with the transport given. */
  gate?: BackoffGate;
}

const DEFAULT_CONNECTIONS = 4;

export interface ResetManyOptions {
  /** @default 16 */
  concurrency?: number;
  /** Aborts the resets in flight. */
  signal?: AbortSignal;
  /** Stops taking new sessions; those in flight finish. */
  stop?: AbortSignal;
}

export interface Resetter {
  readonly plan: ResetPlan;
  readonly pipeline: ResetPipeline;
  readonly transport: Transport;
  reset(sessionId: string, options?: ResetCallOptions): Promise<ResetOutcome>;
  /** Yields one outcome per session as each finishes (not in input order). */
  resetMany(
    ids: AsyncIterable<string> | Iterable<string>,
    options?: ResetManyOptions,
  ): AsyncGenerator<ResetOutcome>;
  /** Runs a bulk reset with a job ledger, dry run or stop signal; resolves with the summary. */
  run(targets: BulkSource, options?: BulkOptions): Promise<BulkSummary>;
  close(): Promise<void>;
}

function tokenProvider(options: ResetterOptions): TokenProvider {
  if (options.tokens !== undefined) return options.tokens;
  if (options.oauth2 !== undefined) {
    return new OAuth2TokenProvider({ allowInsecure: options.allowInsecure ?? false, ...options.oauth2 });
  }
  if (options.token === undefined || options.token === '') {
    throw new CognigyResetError(
      'CR_ERR_AUTH_NO_TOKEN',
      'no token: set COGNIGY_API_TOKEN, --token-file, or OAuth2',
    );
  }
  return new StaticTokenProvider(options.token);
}

export function createResetter(options: ResetterOptions): Resetter {
  const gate = options.gate ?? new BackoffGate();
  const transport =
    options.transport ??
    createTransport(
      {
        transport: 'runtime-ws',
        url: options.url ?? DEFAULT_WS_URL,
        tenant: options.tenant ?? '',
        botId: options.botId ?? '',
        allowInsecure: options.allowInsecure ?? false,
        pipeline: {
          connections: options.connections ?? DEFAULT_CONNECTIONS,
          ackTimeoutSec: (options.ackTimeoutMs ?? 10_000) / 1000,
          maxAttempts: options.retry?.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
        },
        flowControl: {},
      },
      { tokens: () => tokenProvider(options) },
      {
        gate,
        runtime: {
          ...(options.origin === undefined ? {} : { origin: options.origin }),
          ...(options.handshakeTimeoutMs === undefined
            ? {}
            : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
          ...(options.pingIntervalMs === undefined ? {} : { pingIntervalMs: options.pingIntervalMs }),
          ...(options.deadAfterMs === undefined ? {} : { deadAfterMs: options.deadAfterMs }),
        },
      },
    );
  const plan = planReset(options.plan, transport.capabilities);
  const pipeline = new ResetPipeline({ ...options, transport, plan, gate });

  return {
    plan,
    pipeline,
    transport,
    reset: (sessionId, call) => pipeline.reset(sessionId, call),
    run: (targets, bulk) => runBulk(pipeline, targets, bulk),
    async *resetMany(ids, many = {}) {
      const buffer: ResetOutcome[] = [];
      const space: (() => void)[] = [];
      let wake: (() => void) | undefined;
      let finished = false;
      let failure: Error | undefined;
      const capacity = Math.max(1, many.concurrency ?? 16);
      async function* targets(): AsyncGenerator<BulkTarget> {
        let index = 0;
        for await (const sessionId of ids) yield { sessionId, index: index++ };
      }
      const running = runBulk(pipeline, targets(), {
        concurrency: capacity,
        signal: many.signal,
        stop: many.stop,
        onOutcome: async (outcome) => {
          buffer.push(outcome);
          wake?.();
          while (buffer.length > capacity) await new Promise<void>((resolve) => space.push(resolve));
        },
      }).then(
        () => {
          finished = true;
          wake?.();
        },
        (err: unknown) => {
          failure = err instanceof Error ? err : new Error(String(err));
          finished = true;
          wake?.();
        },
      );
      try {
        for (;;) {
          const next = buffer.shift();
          if (next !== undefined) {
            space.shift()?.();
            yield next;
            continue;
          }
          if (finished) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
        if (failure !== undefined) throw failure;
      } finally {
        for (const release of space.splice(0)) release();
        await running;
      }
    },
    close: () => transport.close(),
  };
}

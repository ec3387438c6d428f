/**
 * The one place a transport is built: from what a job says about its engine (`TransportSpec`, part of a
 * job spec) and its credentials. The runner, `createResetter` and the demo all come here.
 */
import { CognigyResetError } from '../errors.js';
import { retryPolicyFor } from '../model/retry-policy.js';
import type { BackoffGate } from '../util/backoff-gate.js';
import { StaticTokenProvider, type TokenProvider } from './auth/token-provider.js';
import { CognigyRestTransport } from './cognigy-rest/transport.js';
import { CognigySocketTransport } from './cognigy-socket/transport.js';
import { RuntimeWsTransport, type RuntimeWsOptions } from './runtime-ws/transport.js';
import { runtimeDialUrl } from './runtime-ws/url.js';
import type { Transport } from './transport.js';

export type TransportName = 'runtime-ws' | 'cognigy-rest' | 'cognigy-socket';
export const TRANSPORT_NAMES: readonly TransportName[] = ['runtime-ws', 'cognigy-rest', 'cognigy-socket'];

export interface TransportSpec {
  transport: TransportName;
  /** runtime-ws: the engine's base or ws URL; cognigy-rest: the REST API base; cognigy-socket: the endpoint URL. */
  url: string;
  tenant: string;
  botId: string;
  allowInsecure: boolean;
  /** `connections` unset: runtime-ws sizes its pool by `CreateTransportOptions.pool`, else 4. */
  pipeline: { connections?: number | undefined; ackTimeoutSec: number; maxAttempts: number };
  flowControl: { rate?: number | undefined };
  /** cognigy-socket: the first input of the restarted Flow. */
  socket?: { text?: string | undefined; data?: Record<string, unknown> | undefined } | undefined;
  /** cognigy-rest: keys of the Flow's default context; undefined: each Flow's default is learned. */
  defaultContextKeys?: string[] | undefined;
}

/** What a transport may need to authenticate; each transport takes what it uses. */
export interface TransportCredentials {
  /** runtime-ws, and REST without an API key: the bearer token source. */
  tokens?: (() => TokenProvider | undefined) | undefined;
  /** cognigy-rest: an API key, sent as X-API-Key. */
  apiKey?: string | undefined;
  /** cognigy-socket: the endpoint's URLToken. */
  urlToken?: string | undefined;
}

export interface CreateTransportOptions {
  /** Shared with the pipeline, so a 429 at a handshake slows every request (runtime-ws). */
  gate?: BackoffGate | undefined;
  /** A dry run dials nothing: missing credentials are not an error. */
  dryRun?: boolean | undefined;
  /**
   * runtime-ws, when the spec names no connections: a pool of up to `max` that spreads requests over
   * `inUse()` of them (say, following the in-flight limit).
   */
  pool?: { max: number; inUse: () => number } | undefined;
  /** runtime-ws connection details, for tests and the library. */
  runtime?: Pick<RuntimeWsOptions, 'origin' | 'handshakeTimeoutMs' | 'pingIntervalMs' | 'deadAfterMs'>;
}

const DRY_RUN = 'unused-in-dry-run';

export function createTransport(
  spec: TransportSpec,
  credentials: TransportCredentials,
  options: CreateTransportOptions = {},
): Transport {
  const dryRun = options.dryRun === true;
  const retry = retryPolicyFor(spec.pipeline.maxAttempts);
  switch (spec.transport) {
    case 'cognigy-rest': {
      const tokens = credentials.apiKey === undefined ? credentials.tokens?.() : undefined;
      const apiKey =
        credentials.apiKey ?? (tokens === undefined ? (dryRun ? DRY_RUN : undefined) : undefined);
      if (apiKey === undefined && tokens === undefined)
        throw noCredentials('REST credentials (an API key or a token)');
      return new CognigyRestTransport({
        apiUrl: spec.url,
        ...(apiKey === undefined ? {} : { apiKey }),
        ...(tokens === undefined ? {} : { tokens }),
        allowInsecure: spec.allowInsecure,
        timeoutMs: spec.pipeline.ackTimeoutSec * 1000,
        retry,
        ...(spec.flowControl.rate === undefined ? {} : { ratePerSec: spec.flowControl.rate }),
        defaultContextKeys: spec.defaultContextKeys,
      });
    }
    case 'cognigy-socket': {
      const urlToken = credentials.urlToken ?? (dryRun ? DRY_RUN : undefined);
      if (urlToken === undefined) throw noCredentials('a URLToken');
      return new CognigySocketTransport({
        endpointUrl: spec.url,
        urlToken,
        text: spec.socket?.text,
        data: spec.socket?.data,
        allowInsecure: spec.allowInsecure,
        retry,
      });
    }
    case 'runtime-ws': {
      const tokens = credentials.tokens?.() ?? (dryRun ? new StaticTokenProvider(DRY_RUN) : undefined);
      if (tokens === undefined) throw noCredentials('a token');
      const tenant = spec.tenant || (dryRun ? 'dry-run' : '');
      const botId = spec.botId || (dryRun ? 'dry-run' : '');
      if (tenant === '' || botId === '') {
        throw new CognigyResetError('CR_ERR_OPT_MISSING', 'tenant and botId are required (--tenant, --bot)', {
          field: tenant === '' ? 'tenant' : 'botId',
        });
      }
      return new RuntimeWsTransport({
        url: runtimeDialUrl(spec.url, tenant, botId, spec.allowInsecure),
        tokens,
        ...(spec.pipeline.connections !== undefined
          ? { connections: spec.pipeline.connections }
          : options.pool !== undefined
            ? { connections: options.pool.max, inUse: options.pool.inUse }
            : {}),
        ...(options.gate === undefined ? {} : { gate: options.gate }),
        ...options.runtime,
      });
    }
  }
}

function noCredentials(what: string): CognigyResetError {
  return new CognigyResetError('CR_ERR_AUTH_NO_TOKEN', `no credentials: this transport needs ${what}`);
}

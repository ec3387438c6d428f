/**
 * OAuth2 tokens from Cognigy's `POST /auth/oauth2/token` (form-encoded; grants `refresh_token` or
 * `client_credentials`). Tokens are refreshed before they expire and after the engine refuses one; one
 * refresh is shared by every caller that asks while it runs.
 */
import { CognigyResetError } from '../../errors.js';
import { readBoundedText } from '../../util/http-body.js';
import { checkedUrl } from '../../util/loopback.js';
import { fetchNoRedirect, refusedRedirect } from '../../util/no-redirect.js';
import { redactUrl } from '../../util/redact.js';
import type { TokenProvider } from './token-provider.js';

/** The largest token answer read: a token, its type, lifetime and refresh token fit many times over. */
export const MAX_TOKEN_BODY_BYTES = 64 * 1024;

export interface OAuth2Options {
  /** The token endpoint, e.g. `https://api-trial.cognigy.ai/auth/oauth2/token`. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** With a refresh token the grant is `refresh_token`; without, `client_credentials`. */
  refreshToken?: string | undefined;
  scope?: string | undefined;
  /** A token already in hand (env `COGNIGY_API_TOKEN`), used until it is refused or expires. */
  initialToken?: string | undefined;
  /** Refresh this long before `expires_in` runs out. @default 30000 */
  skewMs?: number;
  /** Deadline of one token request. @default 10000 */
  timeoutMs?: number;
  /** @default false */
  allowInsecure?: boolean;
}

interface TokenState {
  token: string;
  expiresAt: number;
}

/** Reads the OAuth2 settings from the environment; undefined when they are not configured. */
export function oauth2FromEnv(env: NodeJS.ProcessEnv, initialToken?: string): OAuth2Options | undefined {
  const tokenUrl = env['COGNIGY_OAUTH_TOKEN_URL'];
  if (tokenUrl === undefined || tokenUrl === '') return undefined;
  const clientId = env['COGNIGY_OAUTH_CLIENT_ID'] ?? '';
  const clientSecret = env['COGNIGY_OAUTH_CLIENT_SECRET'] ?? '';
  if (clientId === '' || clientSecret === '') {
    throw new CognigyResetError(
      'CR_ERR_OPT_MISSING',
      'COGNIGY_OAUTH_TOKEN_URL is set but COGNIGY_OAUTH_CLIENT_ID or COGNIGY_OAUTH_CLIENT_SECRET is not',
    );
  }
  return {
    tokenUrl,
    clientId,
    clientSecret,
    refreshToken: env['COGNIGY_OAUTH_REFRESH_TOKEN'] || undefined,
    scope: env['COGNIGY_OAUTH_SCOPE'] || undefined,
    initialToken,
  };
}

export class OAuth2TokenProvider implements TokenProvider {
  readonly refreshable = true;
  readonly #opts: Required<Omit<OAuth2Options, 'refreshToken' | 'scope' | 'initialToken'>>;
  readonly #url: URL;
  #refreshToken: string | undefined;
  readonly #scope: string | undefined;
  #state: TokenState | undefined;
  #inflight: Promise<string> | undefined;
  #requests = 0;

  constructor(options: OAuth2Options) {
    const url = checkedUrl(
      options.tokenUrl,
      'COGNIGY_OAUTH_TOKEN_URL',
      ['https', 'http'],
      options.allowInsecure ?? false,
    );
    this.#url = url;
    this.#opts = {
      tokenUrl: options.tokenUrl,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      skewMs: options.skewMs ?? 30_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      allowInsecure: options.allowInsecure ?? false,
    };
    this.#refreshToken = options.refreshToken;
    this.#scope = options.scope;
    if (options.initialToken !== undefined && options.initialToken !== '') {
      this.#state = { token: options.initialToken, expiresAt: Infinity };
    }
  }

  /** Token requests made so far (shared refreshes count once). */
  get requests(): number {
    return this.#requests;
  }

  async get(signal?: AbortSignal): Promise<string> {
    const state = this.#state;
    if (state !== undefined && Date.now() < state.expiresAt - this.#opts.skewMs) return state.token;
    return this.#single(signal);
  }

  async refresh(stale: string, signal?: AbortSignal): Promise<string> {
    const state = this.#state;
    if (state !== undefined && state.token !== stale && Date.now() < state.expiresAt - this.#opts.skewMs) {
      return state.token;
    }
    return this.#single(signal);
  }

  secrets(): string[] {
    const out = [this.#opts.clientSecret];
    if (this.#refreshToken !== undefined) out.push(this.#refreshToken);
    if (this.#state !== undefined) out.push(this.#state.token);
    return out;
  }

  #single(signal?: AbortSignal): Promise<string> {
    this.#inflight ??= this.#request(signal).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #request(signal?: AbortSignal): Promise<string> {
    this.#requests++;
    const body = new URLSearchParams({
      client_id: this.#opts.clientId,
      client_secret: this.#opts.clientSecret,
    });
    if (this.#refreshToken !== undefined) {
      body.set('grant_type', 'refresh_token');
      body.set('refresh_token', this.#refreshToken);
    } else {
      body.set('grant_type', 'client_credentials');
    }
    if (this.#scope !== undefined) body.set('scope', this.#scope);
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
    const where = redactUrl(this.#url);
    let response: Response;
    try {
      // The body holds the client secret and the refresh token: a redirect must not carry them on.
      response = await fetchNoRedirect(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (cause) {
      throw new CognigyResetError(
        'CR_ERR_AUTH_REFRESH_FAILED',
        `token request to ${where} failed: ${cause instanceof Error ? cause.name : 'error'}`,
        { cause },
      );
    }
    const redirect = await refusedRedirect(
      response,
      this.#url,
      `token request to ${where}`,
      'point COGNIGY_OAUTH_TOKEN_URL at the final address',
    );
    if (redirect !== undefined) throw redirect;
    let json: unknown;
    try {
      json = JSON.parse(
        await readBoundedText(
          response,
          MAX_TOKEN_BODY_BYTES,
          () =>
            new CognigyResetError(
              'CR_ERR_TRANSPORT_BODY_TOO_LARGE',
              `token endpoint ${where} answered ${response.status} with a body over ${MAX_TOKEN_BODY_BYTES / 1024} KiB`,
              { status: response.status },
            ),
        ),
      );
    } catch (cause) {
      if (cause instanceof CognigyResetError) throw cause;
      throw new CognigyResetError(
        'CR_ERR_AUTH_REFRESH_FAILED',
        `token endpoint ${where} answered ${response.status} without JSON`,
        { status: response.status, cause },
      );
    }
    const answer = (json !== null && typeof json === 'object' ? json : {}) as Record<string, unknown>;
    if (!response.ok || typeof answer['access_token'] !== 'string' || answer['access_token'] === '') {
      // RFC 6749 error codes are safe to show; descriptions might echo input, so only the code is kept.
      const error = typeof answer['error'] === 'string' ? answer['error'].slice(0, 64) : 'no access_token';
      throw new CognigyResetError(
        'CR_ERR_AUTH_REFRESH_FAILED',
        `token endpoint ${where} answered ${response.status} (${error})`,
        { status: response.status },
      );
    }
    const expiresIn = typeof answer['expires_in'] === 'number' ? answer['expires_in'] : 3600;
    if (typeof answer['refresh_token'] === 'string' && answer['refresh_token'] !== '') {
      this.#refreshToken = answer['refresh_token'];
    }
    this.#state = { token: answer['access_token'], expiresAt: Date.now() + expiresIn * 1000 };
    return answer['access_token'];
  }
}

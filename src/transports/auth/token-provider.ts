/**
 * Where a transport gets its token. A static token (env `COGNIGY_API_TOKEN` or `--token-file`) cannot be
 * refreshed; an OAuth2 provider (the seed's `RefreshOAuthToken`) can, and shares one refresh among all
 * the callers that found the same token stale.
 */
import { CognigyResetError } from '../../errors.js';

export interface TokenProvider {
  /** A token believed valid now (an OAuth2 provider fetches or refreshes one when it has none or it expired). */
  get(signal?: AbortSignal): Promise<string>;
  /** Whether `refresh` can produce a different token. */
  readonly refreshable: boolean;
  /**
   * A new token after `stale` was refused. Callers that pass the same stale token share one refresh; a
   * caller whose stale token was already replaced gets the replacement without another request.
   */
  refresh(stale: string, signal?: AbortSignal): Promise<string>;
  /** Every secret this provider holds, for scrubbing messages. */
  secrets(): string[];
}

export class StaticTokenProvider implements TokenProvider {
  readonly refreshable = false;
  readonly #token: string;

  constructor(token: string) {
    if (token === '') throw new CognigyResetError('CR_ERR_AUTH_NO_TOKEN', 'the token is empty');
    this.#token = token;
  }

  get(): Promise<string> {
    return Promise.resolve(this.#token);
  }

  refresh(): Promise<string> {
    return Promise.resolve(this.#token);
  }

  secrets(): string[] {
    return [this.#token];
  }
}

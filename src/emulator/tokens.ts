/**
 * The emulator's token registry: which tokens it accepts, with which scopes, until when. A credential is
 * one of three kinds:
 * - a token (`--token`, `dev-token` by default): accepted on every door and in every place, the runtime's
 *   `token` query and, on the REST door, `X-API-Key`, `?api_key=` and `Authorization: Bearer`;
 * - an API key (`--api-key`): the REST door takes it as `X-API-Key` or `?api_key=` only, never as
 *   `Bearer`, as Cognigy's API does, so a client that sends its key as a bearer token is caught;
 * - an OAuth2 access token its token endpoint issued: the REST door takes it as `Bearer` only.
 */
import { randomBytes } from 'node:crypto';
import { SCOPE_RUNTIME_EXECUTE, SCOPE_SESSION_MANAGE } from '../protocol/index.js';

export const DEFAULT_TOKEN = 'dev-token';
export const DEFAULT_SCOPES = [SCOPE_RUNTIME_EXECUTE, SCOPE_SESSION_MANAGE] as const;

export interface TokenSpec {
  token: string;
  /** @default both scopes the runtime checks */
  scopes?: readonly string[];
  /** Milliseconds since the epoch after which the token is expired. @default never */
  expiresAt?: number;
  /**
   * The projects (entrypoints) in which the token's user holds a role that may manage sessions: the REST
   * door answers 403 for a session of any other project, as a real tenant does. @default every project
   */
  projects?: readonly string[];
  /** An API key: `X-API-Key` or `?api_key=` on the REST door, never `Bearer`. @default false */
  apiKey?: boolean;
}

export interface TokenGrant {
  scopes: ReadonlySet<string>;
  expiresAt: number | undefined;
  /** `token`: taken in every place; `key`: an API key; `oauth`: an access token the OAuth2 endpoint issued. */
  kind: 'token' | 'key' | 'oauth';
  /** undefined: every project. */
  projects: ReadonlySet<string> | undefined;
}

/** Parses `TOKEN[:scope,scope]`, the `--token` flag's form. */
export function parseTokenFlag(text: string): TokenSpec {
  const colon = text.indexOf(':');
  if (colon === -1) return { token: text };
  const scopes = text
    .slice(colon + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return { token: text.slice(0, colon), scopes };
}

export class TokenRegistry {
  readonly #grants = new Map<string, TokenGrant>();
  #now: () => number;

  constructor(specs: readonly TokenSpec[] = [{ token: DEFAULT_TOKEN }], now: () => number = Date.now) {
    this.#now = now;
    for (const spec of specs) this.add(spec);
  }

  add(spec: TokenSpec, kind: TokenGrant['kind'] = spec.apiKey === true ? 'key' : 'token'): void {
    this.#grants.set(spec.token, {
      scopes: new Set(spec.scopes ?? DEFAULT_SCOPES),
      expiresAt: spec.expiresAt,
      kind,
      projects: spec.projects === undefined ? undefined : new Set(spec.projects),
    });
  }

  /** Issues a fresh random token (the OAuth2 endpoint's answer). */
  issue(
    scopes: readonly string[],
    ttlMs: number | undefined,
  ): { token: string; expiresAt: number | undefined } {
    const token = `emu_${randomBytes(18).toString('base64url')}`;
    const expiresAt = ttlMs === undefined ? undefined : this.#now() + ttlMs;
    this.add({ token, scopes, expiresAt }, 'oauth');
    return { token, expiresAt };
  }

  /** Expires a token now: connections that dialled with it are closed at their next frame. */
  expire(token: string): void {
    const grant = this.#grants.get(token);
    if (grant !== undefined) grant.expiresAt = this.#now();
  }

  revoke(token: string): void {
    this.#grants.delete(token);
  }

  /** The grant of a live token; undefined for an unknown or expired one. */
  check(token: string | undefined | null): TokenGrant | undefined {
    if (token === undefined || token === null || token === '') return undefined;
    const grant = this.#grants.get(token);
    if (grant === undefined) return undefined;
    if (grant.expiresAt !== undefined && this.#now() >= grant.expiresAt) return undefined;
    return grant;
  }

  isExpired(grant: TokenGrant): boolean {
    return grant.expiresAt !== undefined && this.#now() >= grant.expiresAt;
  }
}

/**
 * The emulator's OAuth2 token endpoint, as Cognigy's `POST /auth/oauth2/token`: form-encoded, grants
 * `client_credentials` and `refresh_token`, answering `{access_token, token_type, expires_in,
 * refresh_token}`. Tokens it issues are accepted until they expire on the runtime door and, as
 * `Authorization: Bearer` only, on the REST door, so a short TTL lets a test expire a token in the middle
 * of a job. Errors follow RFC 6749 and never echo a secret.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { EmulatorContext } from './context.js';
import { HttpError, type HttpResult, readBodyText, type Route } from './http-door.js';
import { bump } from './stats.js';
import { DEFAULT_SCOPES } from './tokens.js';

export interface OAuthClient {
  clientId: string;
  clientSecret: string;
}

export interface OAuthSettings {
  /** @default [{ clientId: 'dev-client', clientSecret: 'dev-secret' }] */
  clients: OAuthClient[];
  /** Lifetime of an issued access token, in seconds. @default 3600 */
  tokenTtlSec: number;
  /** Refresh tokens accepted besides the ones issued. @default ['dev-refresh-token'] */
  refreshTokens: string[];
}

export const DEFAULT_OAUTH: Readonly<OAuthSettings> = Object.freeze({
  clients: [{ clientId: 'dev-client', clientSecret: 'dev-secret' }],
  tokenTtlSec: 3600,
  refreshTokens: ['dev-refresh-token'],
});

const MAX_FORM_BYTES = 64 * 1024;

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    throw new HttpError(400, 'invalid_request', 'body must be application/x-www-form-urlencoded');
  }
  const text = await readBodyText(req, MAX_FORM_BYTES);
  if (text === undefined) throw new HttpError(413, 'invalid_request', 'body too large');
  return new URLSearchParams(text);
}

/** RFC 6749 §5.2 error body. */
function oauthError(status: number, error: string, description: string): HttpError {
  return new HttpError(status, error, description);
}

export function oauthRoutes(ctx: EmulatorContext, settings: OAuthSettings): Route[] {
  const refreshTokens = new Set(settings.refreshTokens);
  return [
    {
      method: 'POST',
      pattern: /^\/auth\/oauth2\/token$/,
      handler: async (req) => {
        try {
          return await issue(req);
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          return { status: err.status, body: { error: err.code, error_description: err.message } };
        }
      },
    },
  ];

  async function issue(req: IncomingMessage): Promise<HttpResult> {
    const form = await readForm(req);
    const clientId = form.get('client_id') ?? '';
    const secret = form.get('client_secret') ?? '';
    const client = settings.clients.find((c) => c.clientId === clientId && c.clientSecret === secret);
    if (client === undefined) {
      bump(ctx.stats.oauth, 'invalid_client');
      throw oauthError(401, 'invalid_client', 'client authentication failed');
    }
    const grant = form.get('grant_type');
    if (grant === 'refresh_token') {
      const refresh = form.get('refresh_token') ?? '';
      if (!refreshTokens.has(refresh)) {
        bump(ctx.stats.oauth, 'invalid_grant');
        throw oauthError(400, 'invalid_grant', 'refresh token unknown or revoked');
      }
    } else if (grant !== 'client_credentials') {
      bump(ctx.stats.oauth, 'unsupported_grant_type');
      throw oauthError(
        400,
        'unsupported_grant_type',
        'grant_type must be client_credentials or refresh_token',
      );
    }
    const requested = (form.get('scope') ?? '').split(/\s+/).filter((s) => s !== '');
    const scopes = requested.length > 0 ? requested : [...DEFAULT_SCOPES];
    const issued = ctx.tokens.issue(scopes, settings.tokenTtlSec * 1000);
    const refreshToken = `emu_rt_${randomBytes(18).toString('base64url')}`;
    refreshTokens.add(refreshToken);
    bump(ctx.stats.oauth, 'issued');
    return {
      status: 200,
      body: {
        access_token: issued.token,
        token_type: 'Bearer',
        expires_in: settings.tokenTtlSec,
        refresh_token: refreshToken,
        scope: scopes.join(' '),
      },
      headers: { 'Cache-Control': 'no-store' },
    };
  }
}

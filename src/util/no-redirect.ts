/**
 * HTTP requests that never follow a redirect. Every request we make carries a credential (`X-API-Key`, a
 * bearer token, an OAuth2 client secret and refresh token), and fetch would resend it to wherever a 307 or
 * 308 points: another host, or plain http. Credentials go only to the origin the user named, so a
 * redirect is an answer like any other, and for our clients a failure (`CR_ERR_TRANSPORT_REDIRECT`).
 */
import { CognigyResetError } from '../errors.js';
import { redactUrl } from './redact.js';

/** `fetch`, with redirects handed back as answers instead of followed. */
export function fetchNoRedirect(url: URL | string, init: RequestInit): Promise<Response> {
  return fetch(url, { ...init, redirect: 'manual' });
}

export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/** Where a redirect points, as an origin: its path and query may carry a secret of their own. */
export function redirectOrigin(location: string | null | undefined, base: URL | string): string {
  if (location === null || location === undefined || location === '') return 'nowhere (no Location)';
  try {
    return redactUrl(new URL(location, base), { path: false });
  } catch {
    return 'an invalid Location';
  }
}

/**
 * `CR_ERR_TRANSPORT_REDIRECT` for a redirect answered to `what` (`POST https://…/token`), naming its
 * status and the origin it points to; `fix` says which setting to point at the final address.
 */
export function redirectError(
  status: number,
  location: string | null | undefined,
  base: URL | string,
  what: string,
  fix: string,
): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_TRANSPORT_REDIRECT',
    `${what} answered ${status}, a redirect to ${redirectOrigin(location, base)}: not followed, so that credentials go only to the origin you named; ${fix}`,
    { status },
  );
}

/** The redirect error of `response`, its body discarded; undefined when it is no redirect. */
export async function refusedRedirect(
  response: Response,
  base: URL | string,
  what: string,
  fix: string,
): Promise<CognigyResetError | undefined> {
  if (!isRedirect(response.status)) return undefined;
  await response.body?.cancel().catch(() => undefined);
  return redirectError(response.status, response.headers.get('location'), base, what, fix);
}

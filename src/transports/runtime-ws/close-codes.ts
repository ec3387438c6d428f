/** What each WebSocket close code, and each refused handshake, means to a caller. */
import { CognigyResetError } from '../../errors.js';
import {
  CLOSE_DROPPED,
  CLOSE_ENGINE_ERROR,
  CLOSE_NORMAL,
  CLOSE_POLICY,
  CLOSE_TOO_BIG,
} from '../../protocol/index.js';
import { redirectError } from '../../util/no-redirect.js';
import { parseRetryAfter } from '../../util/retry-after.js';

/** A close reason is the engine's text; it is shown trimmed and never trusted for more than a hint. */
function shown(reason: string): string {
  const text = reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 123);
  return text === '' ? '' : `: ${text}`;
}

export function closeError(code: number, reason: string): CognigyResetError {
  const details = { closeCode: code };
  switch (code) {
    case CLOSE_NORMAL:
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_CLOSED_NORMAL',
        `engine closed the connection (1000)${shown(reason)}`,
        details,
      );
    case CLOSE_POLICY:
      // The close reason is the only place the engine says which policy was violated.
      if (/token expired/i.test(reason)) {
        return new CognigyResetError(
          'CR_ERR_AUTH_TOKEN_EXPIRED',
          `engine closed with 1008${shown(reason)}`,
          details,
        );
      }
      if (/lacks/i.test(reason)) {
        return new CognigyResetError('CR_ERR_AUTH_SCOPE', `engine closed with 1008${shown(reason)}`, details);
      }
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_POLICY',
        `engine closed with 1008${shown(reason)}`,
        details,
      );
    case CLOSE_TOO_BIG:
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_TOO_BIG',
        `engine closed with 1009${shown(reason)}`,
        details,
      );
    case CLOSE_ENGINE_ERROR:
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_ENGINE_ERROR',
        `engine closed with 1011${shown(reason)}`,
        details,
      );
    default:
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_DROPPED',
        `connection dropped (${code === CLOSE_DROPPED ? '1006' : String(code)})${shown(reason)}`,
        { closeCode: code },
      );
  }
}

/** The client refused an answer past its bound (`ws` closed with 1009): blamed on the request it answered. */
export function answerTooBig(limit: number): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_TRANSPORT_TOO_BIG',
    `the engine sent a frame larger than ${limit} bytes: the connection was closed (1009)`,
    { closeCode: 1009 },
  );
}

export function handshakeError(
  status: number,
  retryAfter: string | undefined,
  where: string,
  location?: string,
): CognigyResetError {
  // The dial URL carries the token: a redirect is never followed (ws `followRedirects: false`) and fails.
  if (status >= 300 && status < 400) {
    return redirectError(
      status,
      location,
      where,
      `${where} at the handshake`,
      'point --url at the final address',
    );
  }
  switch (status) {
    case 400:
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_BAD_REQUEST',
        `${where} answered 400 at the handshake: tenant or botId missing`,
        { status },
      );
    case 401:
      return new CognigyResetError(
        'CR_ERR_AUTH_UNAUTHORIZED',
        `${where} answered 401 at the handshake: the token is unknown or expired`,
        { status },
      );
    case 403:
      return new CognigyResetError(
        'CR_ERR_AUTH_FORBIDDEN',
        `${where} answered 403 at the handshake: the token lacks bot:runtime:execute`,
        { status },
      );
    case 429: {
      const retryAfterMs = parseRetryAfter(retryAfter);
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_RATE_LIMITED',
        `${where} answered 429 at the handshake${retryAfterMs === undefined ? '' : `; retry after ${retryAfterMs} ms`}`,
        retryAfterMs === undefined ? { status } : { status, retryAfterMs },
      );
    }
    default:
      return new CognigyResetError(
        'CR_ERR_TRANSPORT_HANDSHAKE',
        `${where} answered ${status} at the handshake`,
        { status },
      );
  }
}

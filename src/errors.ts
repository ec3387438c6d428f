/**
 * The one catalogue of stable error codes. Codes are never renamed or reused; `docs/errors.md` lists each
 * one and a test keeps the two in step. Every list of codes the code base acts on is a mark on the
 * entries (`fatal`, `unreachable`, `rateLimited`, `blamesOneRequest`, `answerLost`, `storeLost`; `isMarked`), and each
 * code has the HTTP status a service answers with (`http`, or its kind's; `httpStatusOf`).
 *
 * `kind` groups codes for the command line's exit-code mapping (done in `src/cli/` only):
 * - `usage`: bad options or input, nothing was sent;
 * - `auth`: the engine refused the credentials (401/403);
 * - `reset`: a session's reset failed;
 * - `internal`: a bug or an environment problem.
 */
import { terminalSafe } from './util/printable.js';

export const ERROR_CATALOGUE = {
  // Options and input, checked at the edge.
  CR_ERR_OPT_INVALID: { kind: 'usage', retryable: false, summary: 'an option has an invalid value' },
  CR_ERR_OPT_MISSING: {
    kind: 'usage',
    retryable: false,
    summary: 'a required option or variable is missing',
  },
  CR_ERR_OPT_INSECURE_URL: {
    kind: 'usage',
    retryable: false,
    summary: 'a plain ws:// or http:// URL to a host that is not loopback, without --allow-insecure',
  },
  CR_ERR_OPT_LISTEN: {
    kind: 'usage',
    retryable: false,
    summary: 'a --port or --metrics-port cannot be listened on (in use, or not permitted)',
  },
  CR_ERR_OPT_SESSION_ID: { kind: 'usage', retryable: false, summary: 'a session id is malformed' },

  // The wire protocol.
  CR_ERR_PROTO_NOT_JSON: { kind: 'usage', retryable: false, summary: 'a frame is not valid JSON' },
  CR_ERR_PROTO_NOT_OBJECT: { kind: 'usage', retryable: false, summary: 'a frame is not a JSON object' },
  CR_ERR_PROTO_BINARY_FRAME: {
    kind: 'usage',
    retryable: false,
    summary: 'a binary frame where text is required',
  },
  CR_ERR_PROTO_FRAME_TOO_BIG: { kind: 'usage', retryable: false, summary: 'a frame exceeds 64 KiB' },
  CR_ERR_PROTO_UNKNOWN_TYPE: { kind: 'usage', retryable: false, summary: 'a frame has an unknown `type`' },
  CR_ERR_PROTO_MISSING_FIELD: { kind: 'usage', retryable: false, summary: 'a required field is missing' },
  CR_ERR_PROTO_UNKNOWN_FIELD: {
    kind: 'usage',
    retryable: false,
    summary: 'a field the engine does not accept',
  },
  CR_ERR_PROTO_INVALID_FIELD: {
    kind: 'usage',
    retryable: false,
    summary: 'a field has the wrong type or value',
  },
  CR_ERR_PROTO_BAD_ANSWER: {
    kind: 'reset',
    retryable: true,
    answerLost: true,
    summary: 'the engine sent an answer that is not of a known shape',
  },
  CR_ERR_PROTO_ANSWER_MISMATCH: {
    kind: 'reset',
    retryable: true,
    answerLost: true,
    summary: 'the engine echoed a requestId that does not match the request it answered',
  },
  CR_ERR_PROTO_UNSOLICITED: {
    kind: 'reset',
    retryable: true,
    summary: 'the engine sent a frame when no request was waiting',
  },

  // Authentication and permission.
  CR_ERR_AUTH_NO_TOKEN: {
    kind: 'usage',
    retryable: false,
    http: 401,
    fatal: true,
    summary: 'no token was configured',
  },
  CR_ERR_AUTH_UNAUTHORIZED: {
    kind: 'auth',
    retryable: false,
    fatal: true,
    summary: 'the engine answered 401: the token is unknown or expired',
  },
  CR_ERR_AUTH_FORBIDDEN: {
    kind: 'auth',
    retryable: false,
    http: 403,
    fatal: true,
    summary: 'the engine answered 403: the token lacks bot:runtime:execute',
  },
  CR_ERR_AUTH_TOKEN_EXPIRED: {
    kind: 'auth',
    retryable: true,
    summary: 'the engine closed the connection because the token expired',
  },
  CR_ERR_AUTH_SCOPE: {
    kind: 'auth',
    retryable: false,
    http: 403,
    fatal: true,
    summary: 'the engine closed with 1008 because the token lacks session:manage',
  },
  CR_ERR_AUTH_REFRESH_FAILED: {
    kind: 'auth',
    retryable: false,
    fatal: true,
    summary: 'the OAuth2 token refresh failed',
  },

  // Transports.
  CR_ERR_TRANSPORT_BAD_REQUEST: {
    kind: 'usage',
    retryable: false,
    fatal: true,
    summary: 'the engine answered 400 at the handshake (tenant or botId missing)',
  },
  CR_ERR_TRANSPORT_RATE_LIMITED: {
    kind: 'reset',
    retryable: true,
    http: 429,
    rateLimited: true,
    summary: 'the engine answered 429 at the handshake',
  },
  CR_ERR_TRANSPORT_HANDSHAKE: {
    kind: 'reset',
    retryable: true,
    summary: 'the handshake failed with an unexpected HTTP status',
  },
  CR_ERR_TRANSPORT_HANDSHAKE_TIMEOUT: {
    kind: 'reset',
    retryable: true,
    http: 504,
    summary: 'the handshake did not complete within its timeout',
  },
  CR_ERR_TRANSPORT_CONNECT: {
    kind: 'reset',
    retryable: true,
    unreachable: true,
    summary: 'the engine could not be reached',
  },
  CR_ERR_TRANSPORT_CLOSED_NORMAL: {
    kind: 'reset',
    retryable: true,
    summary: 'the engine closed the connection normally (1000) before answering',
  },
  CR_ERR_TRANSPORT_POLICY: {
    kind: 'reset',
    retryable: false,
    blamesOneRequest: true,
    summary: 'the engine closed with 1008: invalid directive or token lacks session:manage',
  },
  CR_ERR_TRANSPORT_TOO_BIG: {
    kind: 'reset',
    retryable: false,
    blamesOneRequest: true,
    summary: 'the engine closed with 1009',
  },
  CR_ERR_TRANSPORT_ENGINE_ERROR: {
    kind: 'reset',
    retryable: true,
    blamesOneRequest: true,
    summary: 'the engine closed with 1011',
  },
  CR_ERR_TRANSPORT_DROPPED: {
    kind: 'reset',
    retryable: true,
    answerLost: true,
    summary: 'the connection dropped (1006) or closed abnormally',
  },
  CR_ERR_TRANSPORT_DEAD: {
    kind: 'reset',
    retryable: true,
    answerLost: true,
    summary: 'no frame or pong for 60 s: the connection is dead',
  },
  CR_ERR_TRANSPORT_CLOSED: { kind: 'reset', retryable: false, http: 503, summary: 'the client was closed' },
  CR_ERR_TRANSPORT_REST_BAD_REQUEST: {
    kind: 'reset',
    retryable: false,
    summary: 'the REST API answered 400 (Cognigy code 1000 missing or 1005 invalid argument)',
  },
  CR_ERR_TRANSPORT_REST_CONFLICT: {
    kind: 'reset',
    retryable: false,
    http: 409,
    summary: 'the REST API answered 409',
  },
  CR_ERR_TRANSPORT_REST_TOO_LARGE: {
    kind: 'reset',
    retryable: false,
    summary: 'the REST API answered 413: the request body is too large',
  },
  CR_ERR_TRANSPORT_REST_RATE_LIMITED: {
    kind: 'reset',
    retryable: true,
    http: 429,
    rateLimited: true,
    summary: 'the REST API answered 429',
  },
  CR_ERR_TRANSPORT_REST_SERVER: {
    kind: 'reset',
    retryable: true,
    summary: 'the REST API answered 5xx',
  },
  CR_ERR_TRANSPORT_REST_TIMEOUT: {
    kind: 'reset',
    retryable: true,
    http: 504,
    summary: 'a REST API request missed its deadline',
  },
  CR_ERR_TRANSPORT_SOCKET_CONNECT: {
    kind: 'reset',
    retryable: true,
    unreachable: true,
    summary: 'the Socket endpoint could not be reached or refused the connection',
  },
  CR_ERR_TRANSPORT_SOCKET_TIMEOUT: {
    kind: 'reset',
    retryable: true,
    http: 504,
    answerLost: true,
    summary: 'the Socket endpoint did not connect within the deadline (nothing was sent)',
  },
  CR_ERR_TRANSPORT_SOCKET_SERVER: {
    kind: 'reset',
    retryable: false,
    summary:
      'the Socket endpoint reported an internal error (Cognigy code 1008) for the input it was sent; not sent again',
  },
  CR_ERR_TRANSPORT_SOCKET_ERROR: {
    kind: 'reset',
    retryable: false,
    summary: 'the Socket endpoint answered with an error output or an exception',
  },
  CR_ERR_TRANSPORT_SOCKET_TOO_BIG: {
    kind: 'reset',
    retryable: false,
    summary: 'the Socket endpoint sent a frame larger than 1 MiB; the connection was closed',
  },
  CR_ERR_TRANSPORT_BODY_TOO_LARGE: {
    kind: 'reset',
    retryable: false,
    summary:
      'an HTTP answer (REST API, OAuth2 token endpoint) was larger than its bound (REST 4 MiB, token 64 KiB)',
  },
  CR_ERR_TRANSPORT_REST_UNEXPECTED: {
    kind: 'reset',
    retryable: false,
    summary: 'the REST API answered with an unexpected status or body',
  },
  CR_ERR_TRANSPORT_REDIRECT: {
    kind: 'usage',
    retryable: false,
    http: 502,
    fatal: true,
    summary:
      'an HTTP endpoint (REST API, OAuth2 token URL, runtime handshake) answered with a redirect, which is never followed',
  },

  // The reset pipeline.
  CR_ERR_RESET_SESSION_NOT_FOUND: {
    kind: 'reset',
    retryable: false,
    http: 404,
    summary: 'the engine does not know the session',
  },
  CR_ERR_RESET_REJECTED: { kind: 'reset', retryable: false, summary: 'the engine rejected the directive' },
  CR_ERR_RESET_RATE_LIMITED: {
    kind: 'reset',
    retryable: true,
    http: 429,
    rateLimited: true,
    summary: 'the engine answered RATE_LIMITED; the directive was not applied',
  },
  CR_ERR_RESET_ACK_TIMEOUT: {
    kind: 'reset',
    retryable: true,
    http: 504,
    answerLost: true,
    summary: 'no acknowledgement within the deadline',
  },
  CR_ERR_RESET_VERIFY_ACTIVE: {
    kind: 'reset',
    retryable: false,
    summary: 'the flow was still ACTIVE when the verification deadline passed',
  },
  CR_ERR_RESET_VERIFY_VARIABLES: {
    kind: 'reset',
    retryable: false,
    summary: 'variables remained after the reset',
  },
  CR_ERR_RESET_VERIFY_HISTORY: {
    kind: 'reset',
    retryable: false,
    summary: 'history remained after the reset',
  },
  CR_ERR_RESET_VERIFY_NLU: {
    kind: 'reset',
    retryable: false,
    summary: 'NLU context remained after the reset',
  },
  CR_ERR_RESET_VERIFY_STATE: {
    kind: 'reset',
    retryable: false,
    summary: 'a cleared state layer (dialog or engine) did not reach its reset value',
  },
  CR_ERR_RESET_RETRY_AFTER_TOO_LONG: {
    kind: 'reset',
    retryable: false,
    http: 429,
    summary:
      'the engine asked to wait (Retry-After or retryAfterMs) longer than the retry policy waits (5 minutes)',
  },
  CR_ERR_RESET_DUPLICATE: {
    kind: 'reset',
    retryable: false,
    http: 409,
    summary: 'the input lists a session again: skipped, as a job resets each session at most once',
  },
  CR_ERR_RESET_RESUME_UNSURE: {
    kind: 'reset',
    retryable: false,
    http: 409,
    summary:
      'on resume, a session an interrupted run may have reset could not be told apart from one not reset: not sent again',
  },
  CR_ERR_RESET_ABORTED: {
    kind: 'reset',
    retryable: false,
    http: 503,
    summary: 'the reset was aborted before it finished',
  },
  CR_ERR_RESET_UNCONFIRMED: {
    kind: 'reset',
    retryable: false,
    summary:
      'processInput with resetFlow was sent, but its answer never came (a timeout or a dropped connection): the Flow may or may not have restarted',
  },

  // The store: the state file, or a PostgreSQL database.
  CR_ERR_STATE_CORRUPT: {
    kind: 'usage',
    retryable: false,
    http: 500,
    summary:
      "the state file is not a cognigy-reset database, or is damaged; or a PostgreSQL store's tables are not what this version made",
  },
  CR_ERR_STATE_NEWER: {
    kind: 'usage',
    retryable: false,
    http: 500,
    summary:
      "the state file, or the PostgreSQL store's schema, was written by a newer version of cognigy-reset",
  },
  CR_ERR_STATE_OPEN: {
    kind: 'usage',
    retryable: false,
    http: 503,
    storeLost: true,
    summary:
      'the state file cannot be opened or created (missing directory, permissions, not a regular file, held locked by another process); or the PostgreSQL store cannot be reached, refuses the login, cannot be written, or holds no store for a read',
  },
  CR_ERR_STATE_WRITE: {
    kind: 'internal',
    retryable: false,
    http: 503,
    storeLost: true,
    summary:
      'a write to the state file or the PostgreSQL store failed (disk full, permissions, the file removed, the connection lost)',
  },
  CR_ERR_STATE_JOB_MISMATCH: {
    kind: 'usage',
    retryable: false,
    http: 409,
    summary: 'a job of that name exists with different settings',
  },
  CR_ERR_STATE_JOB_RUNNING: {
    kind: 'usage',
    retryable: false,
    http: 409,
    summary:
      'the job is being run by another process (on this host, or on another whose lease has not expired)',
  },
  CR_ERR_STATE_JOB_LOST: {
    kind: 'internal',
    retryable: false,
    http: 409,
    summary: "another run took the job's lease over while this one held it (its lease expired)",
  },

  // Audit verification.
  CR_ERR_AUDIT_BAD_LINE: {
    kind: 'internal',
    retryable: false,
    http: 422,
    summary:
      'a line of an exported audit file is not an audit record (not JSON, not an object, a field missing, added or of the wrong type)',
  },

  // The command line.
  CR_ERR_CLI_USAGE: { kind: 'usage', retryable: false, summary: 'the command line could not be parsed' },
  CR_ERR_CLI_INPUT: { kind: 'usage', retryable: false, summary: 'the input file could not be read' },
  CR_ERR_CLI_INPUT_ENCODING: {
    kind: 'usage',
    retryable: false,
    summary: 'an input line is not valid UTF-8',
  },
  CR_ERR_CLI_LINE_TOO_LONG: {
    kind: 'usage',
    retryable: false,
    http: 413,
    summary: 'an input line is longer than 1 MiB: no session id or row is that long',
  },
  CR_ERR_CLI_OUTPUT: {
    kind: 'internal',
    retryable: false,
    summary: 'an output file (--metrics-file) could not be written at the end of the run',
  },
  CR_ERR_CLI_STALLED: {
    kind: 'internal',
    retryable: false,
    summary: 'the command stopped making progress: nothing it waited on could still happen',
  },

  // Selectors: finding the sessions to reset in Cognigy's OData analytics data.
  CR_ERR_SELECT_UNAUTHORIZED: {
    kind: 'auth',
    retryable: false,
    // To a client of the service, the service's own key was not refused: a 401 would say it was.
    http: 502,
    summary: "the OData endpoint or the REST API answered 401/403 to the selector's key",
  },
  CR_ERR_SELECT_REFUSED: {
    kind: 'usage',
    retryable: false,
    http: 502,
    summary: "the OData endpoint refused the selector's query (400 or another 4xx)",
  },
  CR_ERR_SELECT_UNAVAILABLE: {
    kind: 'reset',
    retryable: true,
    summary: 'the OData endpoint kept failing (5xx, 429, timeout or no connection) after the retries',
  },
  CR_ERR_SELECT_BAD_ANSWER: {
    kind: 'reset',
    retryable: false,
    summary: 'the OData endpoint or the REST API answered with a body of an unknown shape',
  },
  CR_ERR_SELECT_LOOKUP: {
    kind: 'reset',
    retryable: false,
    summary: 'a REST read that completes a row (endpoint or Flow) failed',
  },
  CR_ERR_SELECT_UNCONFIRMED: {
    kind: 'usage',
    retryable: false,
    http: 422,
    summary: 'reset with a selector, without --dry-run, --expect or --yes: nothing was sent',
  },
  CR_ERR_SELECT_COUNT_MISMATCH: {
    kind: 'usage',
    retryable: false,
    http: 422,
    summary: 'the selector matched a count outside --expect ± --expect-margin: nothing was sent',
  },

  // The service (`cognigy-reset serve`): refusals of its HTTP API.
  CR_ERR_API_UNAUTHORIZED: {
    kind: 'auth',
    retryable: false,
    summary: 'the API key is missing, unknown or revoked',
  },
  CR_ERR_API_FORBIDDEN: {
    http: 403,
    kind: 'auth',
    retryable: false,
    summary: 'the API key lacks the scope, or is not bound to the tenant, this request needs',
  },
  CR_ERR_API_NOT_FOUND: { kind: 'usage', retryable: false, http: 404, summary: 'no such route or job' },
  CR_ERR_API_CONFLICT: {
    http: 409,
    kind: 'usage',
    retryable: false,
    summary: 'the job is in a state that does not allow this (cancel of a finished job)',
  },
  CR_ERR_API_NOT_RESUMABLE: {
    http: 409,
    kind: 'usage',
    retryable: false,
    summary: 'only a failed or cancelled job resumes: this one is queued, running or succeeded',
  },
  CR_ERR_API_IDEMPOTENCY: {
    http: 422,
    kind: 'usage',
    retryable: false,
    summary: 'the Idempotency-Key was used before with another request',
  },
  CR_ERR_API_MEDIA_TYPE: {
    http: 415,
    kind: 'usage',
    retryable: false,
    summary: 'the request body has a media type the route does not take',
  },
  CR_ERR_API_TOO_LARGE: {
    kind: 'usage',
    retryable: false,
    http: 413,
    summary: 'the request body is too large',
  },
  CR_ERR_API_RATE_LIMITED: {
    kind: 'usage',
    retryable: false,
    http: 429,
    summary: 'the API key sent more requests than its limit per minute',
  },
  CR_ERR_API_CONFIG: {
    kind: 'usage',
    retryable: false,
    summary: 'the service configuration (--config) is invalid, or a secret it names cannot be read',
  },
  CR_ERR_API_INTERNAL: {
    kind: 'internal',
    retryable: false,
    summary: 'the service failed to answer a request (a bug)',
  },

  // The emulator's own reasons (close reasons and HTTP error bodies).
  CR_EMU_ERR_NOT_FOUND: {
    kind: 'usage',
    retryable: false,
    http: 404,
    summary: 'emulator: no such route or session',
  },
  CR_EMU_ERR_BAD_REQUEST: { kind: 'usage', retryable: false, summary: 'emulator: malformed request body' },
  CR_EMU_ERR_SESSION_EXISTS: {
    kind: 'usage',
    retryable: false,
    http: 409,
    summary: 'emulator: the session already exists',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorKind = 'usage' | 'auth' | 'reset' | 'internal';
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** What the catalogue says of a code. The marks name the lists of codes the code base acts on. */
export interface CatalogueEntry {
  kind: ErrorKind;
  retryable: boolean;
  summary: string;
  /** The HTTP status a service answers with; unset, the kind's (`KIND_HTTP_STATUS`). */
  http?: number;
  /** No other session can succeed either (credentials refused, a wrong endpoint): a run stops taking new ones. */
  fatal?: true;
  /** The engine could not be reached at all (not that it refused or broke a reset). */
  unreachable?: true;
  /** A "slow down" answer: it pauses the whole job and tells an adaptive rate to slow down. */
  rateLimited?: true;
  /** A runtime close caused by the one request it answered: the requests behind it are sent again. */
  blamesOneRequest?: true;
  /** The answer to what was sent may have been lost (a timeout, a dropped connection, a garbled answer). */
  answerLost?: true;
  /** The store could not be reached or written: the failure is the connection's, not the work's. */
  storeLost?: true;
}

export type ErrorMark =
  'fatal' | 'unreachable' | 'rateLimited' | 'blamesOneRequest' | 'answerLost' | 'storeLost';

/** The HTTP status of each kind, unless the code's entry names its own. */
export const KIND_HTTP_STATUS: Readonly<Record<ErrorKind, number>> = {
  usage: 400,
  auth: 401,
  reset: 502,
  internal: 500,
};

/** The HTTP status a service answers a failure with this code (500 for a code not in the catalogue). */
export function httpStatusOf(code: string): number {
  if (!isErrorCode(code)) return 500;
  const entry: CatalogueEntry = ERROR_CATALOGUE[code];
  return entry.http ?? KIND_HTTP_STATUS[entry.kind];
}

/** The codes the catalogue gives `mark`. */
export function codesMarked(mark: ErrorMark): ReadonlySet<string> {
  return new Set(
    (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).filter(
      (code) => (ERROR_CATALOGUE[code] as CatalogueEntry)[mark] === true,
    ),
  );
}

const MARKED = {
  fatal: codesMarked('fatal'),
  unreachable: codesMarked('unreachable'),
  rateLimited: codesMarked('rateLimited'),
  blamesOneRequest: codesMarked('blamesOneRequest'),
  answerLost: codesMarked('answerLost'),
  storeLost: codesMarked('storeLost'),
} satisfies Record<ErrorMark, ReadonlySet<string>>;

/** Whether the catalogue gives `code` (an error's, or a code as a string) `mark`. */
export function isMarked(code: string | undefined, mark: ErrorMark): boolean {
  return code !== undefined && MARKED[mark].has(code);
}

export interface ErrorDetails {
  /** The offending field, as a dotted path (`contextWipeDirective.clearHistory`). */
  field?: string;
  /** HTTP status at the handshake or of a REST call. */
  status?: number;
  /** WebSocket close code. */
  closeCode?: number;
  /** How long the engine asked us to wait, from `Retry-After` or `retryAfterMs`. */
  retryAfterMs?: number;
  /** Cognigy's numeric error code from an RFC 7807 body (1000, 1002, 1005, ...). */
  cognigyCode?: number;
  /** The `traceId` of an RFC 7807 body, for Cognigy support. */
  traceId?: string;
  cause?: unknown;
}

/** Every error this package raises on purpose. Protocol facts ride on it as fields. */
export class CognigyResetError extends Error {
  override readonly name = 'CognigyResetError';
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly cognigyCode: number | undefined;
  readonly traceId: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    // Messages carry engine reasons and ids from input, and are printed, logged and audited: whatever a
    // terminal could act on is escaped here, once, for every one of them.
    super(terminalSafe(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.field = details.field;
    this.status = details.status;
    this.closeCode = details.closeCode;
    this.retryAfterMs = details.retryAfterMs;
    this.cognigyCode = details.cognigyCode;
    this.traceId = details.traceId;
  }

  get kind(): ErrorKind {
    return ERROR_CATALOGUE[this.code].kind;
  }

  get retryable(): boolean {
    return ERROR_CATALOGUE[this.code].retryable;
  }

  /** The shape the CLI and the audit log show: code and message only, never a cause chain. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isCognigyResetError(err: unknown): err is CognigyResetError {
  return err instanceof CognigyResetError;
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}

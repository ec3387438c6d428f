/** RFC 7807 answers of Cognigy's REST API turned into coded errors that keep status, code and traceId. */
import { CognigyResetError, type ErrorCode } from '../../errors.js';
import { parseRetryAfter } from '../../util/retry-after.js';

export interface Problem {
  title?: string;
  detail?: string;
  code?: number;
  traceId?: string;
}

function readProblem(body: unknown): Problem {
  if (body === null || typeof body !== 'object') return {};
  const b = body as Record<string, unknown>;
  return {
    ...(typeof b['title'] === 'string' ? { title: b['title'].slice(0, 120) } : {}),
    ...(typeof b['detail'] === 'string' ? { detail: b['detail'].slice(0, 300) } : {}),
    ...(typeof b['code'] === 'number' ? { code: b['code'] } : {}),
    ...(typeof b['traceId'] === 'string' ? { traceId: b['traceId'].slice(0, 100) } : {}),
  };
}

function codeFor(status: number): ErrorCode {
  if (status === 400) return 'CR_ERR_TRANSPORT_REST_BAD_REQUEST';
  if (status === 401) return 'CR_ERR_AUTH_UNAUTHORIZED';
  if (status === 403) return 'CR_ERR_AUTH_FORBIDDEN';
  if (status === 404) return 'CR_ERR_RESET_SESSION_NOT_FOUND';
  if (status === 409) return 'CR_ERR_TRANSPORT_REST_CONFLICT';
  if (status === 413) return 'CR_ERR_TRANSPORT_REST_TOO_LARGE';
  if (status === 429) return 'CR_ERR_TRANSPORT_REST_RATE_LIMITED';
  if (status >= 500) return 'CR_ERR_TRANSPORT_REST_SERVER';
  return 'CR_ERR_TRANSPORT_REST_UNEXPECTED';
}

export function problemError(
  status: number,
  body: unknown,
  retryAfter: string | null,
  operation: string,
): CognigyResetError {
  const problem = readProblem(body);
  const retryAfterMs = parseRetryAfter(retryAfter);
  const what = problem.detail ?? problem.title ?? 'no detail';
  const cognigy = problem.code === undefined ? '' : ` (Cognigy code ${problem.code})`;
  const trace = problem.traceId === undefined ? '' : ` traceId ${problem.traceId}`;
  return new CognigyResetError(
    codeFor(status),
    `${operation} answered ${status}${cognigy}: ${what}${trace}`,
    {
      status,
      ...(problem.code === undefined ? {} : { cognigyCode: problem.code }),
      ...(problem.traceId === undefined ? {} : { traceId: problem.traceId }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    },
  );
}

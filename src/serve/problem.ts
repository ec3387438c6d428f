/**
 * Refusals as RFC 9457 `application/problem+json`, each carrying its stable `code` (a `CR_ERR_*`); the
 * HTTP status is the catalogue's for the code (`httpStatusOf`).
 */
import { CognigyResetError, httpStatusOf, type ErrorCode } from '../errors.js';

export const PROBLEM_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  field?: string | undefined;
  /** A selector's count, on a refusal to run it unconfirmed. */
  count?: number | undefined;
}

/** The problem document of a coded error; anything else is a 500 that says no more than that. */
export function problemOf(err: unknown): Problem {
  if (err instanceof CognigyResetError) {
    const status = httpStatusOf(err.code);
    return {
      type: `urn:cognigy-reset:error:${err.code}`,
      title: err.code,
      status,
      detail: err.message,
      code: err.code,
      ...(err.field === undefined ? {} : { field: err.field }),
      ...countOf(err),
    };
  }
  return problemOf(new CognigyResetError('CR_ERR_API_INTERNAL', 'the service failed to answer this request'));
}

function countOf(err: CognigyResetError): { count?: number } {
  const count = (err as { count?: unknown }).count;
  return typeof count === 'number' ? { count } : {};
}

/** A refusal to throw from a route. */
export function refuse(code: ErrorCode, message: string, field?: string): CognigyResetError {
  return new CognigyResetError(code, message, field === undefined ? {} : { field });
}

/** The JSON Schema of a problem document, for every route's error responses. */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', pattern: '^CR_' },
    field: { type: 'string' },
    count: { type: 'integer', description: "the selector's count, on a refusal to run it unconfirmed" },
  },
} as const;

/**
 * A selector: which sessions to reset, named by what Cognigy's analytics data records. Checked once, at
 * the edge; its description (never a key) goes into audit records.
 */
import { CognigyResetError } from '../errors.js';
import { printableProblem } from '../util/printable.js';

export type SelectorKind = 'flow' | 'endpoint' | 'node';

export interface Selector {
  /** `flow`: sessions with a step of that Flow in the window; `endpoint`: sessions started on that
   * endpoint in the window; `node`: sessions whose last recorded step is that node, in the window. */
  kind: SelectorKind;
  /** The Flow's reference id, the endpoint's reference id, or the node's id. */
  ref: string;
  /** Inclusive lower bound, RFC 3339. */
  since?: string;
  /** Exclusive upper bound, RFC 3339. */
  until?: string;
}

const REF_MAX = 256;

/** A selector from its parts, or the problem naming the field (`flow`, `since`, …). */
export function checkSelector(input: {
  flow?: string | undefined;
  endpoint?: string | undefined;
  node?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}): Selector {
  const given = (['flow', 'endpoint', 'node'] as const).filter((k) => input[k] !== undefined);
  if (given.length !== 1) {
    throw new CognigyResetError(
      given.length === 0 ? 'CR_ERR_OPT_MISSING' : 'CR_ERR_OPT_INVALID',
      `a selector needs exactly one of flow, endpoint, node; got ${given.length === 0 ? 'none' : given.join(', ')}`,
      { field: given[1] ?? 'flow' },
    );
  }
  const kind = given[0]!;
  const ref = input[kind]!;
  const problem = printableProblem(ref, REF_MAX);
  if (problem !== undefined)
    throw new CognigyResetError('CR_ERR_OPT_INVALID', `${kind}: ${problem}`, { field: kind });
  const selector: Selector = { kind, ref };
  for (const bound of ['since', 'until'] as const) {
    const text = input[bound];
    if (text === undefined) continue;
    const ms = Date.parse(text);
    if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(text) || Number.isNaN(ms)) {
      throw new CognigyResetError(
        'CR_ERR_OPT_INVALID',
        `Expected ${bound} to be an ISO 8601 date or date-time (2026-11-30T08:00:00Z), got ${JSON.stringify(text.slice(0, 40))}`,
        { field: bound },
      );
    }
    selector[bound] = new Date(ms).toISOString();
  }
  if (selector.since !== undefined && selector.until !== undefined && selector.since >= selector.until) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', 'the window is empty: since must be before until', {
      field: 'until',
    });
  }
  return Object.freeze(selector);
}

/** `flow=REF since=… until=…`: what the audit log and messages show. */
export function describeSelector(selector: Selector): string {
  return [
    `${selector.kind}=${selector.ref}`,
    ...(selector.since === undefined ? [] : [`since=${selector.since}`]),
    ...(selector.until === undefined ? [] : [`until=${selector.until}`]),
  ].join(' ');
}

/** The audit reason of a session a selector chose: the caller's reason, then the selector. */
export function reasonWithSelector(reason: string | null | undefined, description: string): string {
  return reason === undefined || reason === null
    ? `[selector: ${description}]`
    : `${reason} [selector: ${description}]`;
}

/** One row per distinct session: what `reset --from-file` reads and every transport needs. */
export interface SessionRow {
  sessionId: string;
  userId: string;
  flowReferenceId: string;
  entrypoint: string;
  /** RFC 3339: the latest matching step (`flow`, `node`), or the session's start (`endpoint`). */
  lastSeen: string;
}

export const ROW_FIELDS = ['sessionId', 'userId', 'flowReferenceId', 'entrypoint', 'lastSeen'] as const;

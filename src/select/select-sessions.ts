/**
 * The sessions a selector matches, as a stream of row batches: one row per distinct session.
 *
 * Dedupe in flat memory: `flow` and `node` read ExecutedSteps keyset-ordered by (sessionId, timestamp
 * descending), so every step of a session arrives next to the others and only the previous session id
 * is held; the first step of each session is its latest in the window (`lastSeen`). `endpoint` reads
 * Sessions, one record per session, ordered by (startedAt descending, sessionId). Exact while the data
 * does not change under the listing; see docs/selectors.md for what happens when it does.
 */
import { CognigyResetError } from '../errors.js';
import { keysetPages, literal, type KeysetQuery } from './keyset-pages.js';
import type { ODataClient } from './odata-client.js';
import type { RestLookup } from './rest-lookup.js';
import type { Selector, SessionRow } from './selector.js';

export interface SelectOptions {
  odata: ODataClient;
  /** Needed by `endpoint` selectors only. */
  rest?: RestLookup | undefined;
  /** Rows per OData page. @default 1000 */
  pageSize?: number;
  /** Stop after this many rows. */
  limit?: number | undefined;
  /** `node`: last-step look-ups in flight. @default 8 */
  concurrency?: number;
}

function windowFilter(field: string, selector: Selector): string[] {
  return [
    ...(selector.since === undefined ? [] : [`${field} ge ${literal(selector.since)}`]),
    ...(selector.until === undefined ? [] : [`${field} lt ${literal(selector.until)}`]),
  ];
}

function text(row: Record<string, unknown>, field: string, collection: string): string {
  const value = row[field];
  if (typeof value !== 'string' || value === '') {
    throw new CognigyResetError('CR_ERR_SELECT_BAD_ANSWER', `OData ${collection}: a row lacks ${field}`);
  }
  return value;
}

/** The entrypoint a step ran in: its snapshot when it ran from one, else its project. */
function entrypointOf(row: Record<string, unknown>): string {
  const snapshot = row['snapshotId'];
  return typeof snapshot === 'string' && snapshot !== '' ? snapshot : text(row, 'projectId', 'ExecutedSteps');
}

const STEP_FIELDS = [
  'sessionId',
  'userId',
  'flowReferenceId',
  'entityReferenceId',
  'timestamp',
  'projectId',
  'snapshotId',
];

export async function* selectSessions(
  selector: Selector,
  options: SelectOptions,
): AsyncGenerator<SessionRow[]> {
  const limit = options.limit ?? Infinity;
  if (limit <= 0) return;
  let emitted = 0;
  for await (const batch of rawRows(selector, options)) {
    const rows = batch.length > limit - emitted ? batch.slice(0, limit - emitted) : batch;
    emitted += rows.length;
    if (rows.length > 0) yield rows;
    if (emitted >= limit) return;
  }
}

async function* rawRows(selector: Selector, options: SelectOptions): AsyncGenerator<SessionRow[]> {
  const pageSize = options.pageSize ?? 1000;
  if (selector.kind === 'endpoint') {
    if (options.rest === undefined) {
      throw new CognigyResetError('CR_ERR_OPT_MISSING', 'an endpoint selector needs the REST API (apiUrl)', {
        field: 'apiUrl',
      });
    }
    const { flowReferenceId, entrypoint } = await options.rest.endpoint(selector.ref);
    const query: KeysetQuery = {
      collection: 'Sessions',
      filter: [
        `endpointReferenceId eq ${literal(selector.ref)}`,
        ...windowFilter('startedAt', selector),
      ].join(' and '),
      key: 'startedAt',
      keyIsTime: true,
      desc: true,
      orderby: 'startedAt desc,sessionId desc',
      select: ['sessionId', 'userId', 'startedAt'],
      pageSize,
    };
    for await (const page of keysetPages(options.odata, query)) {
      yield page.map((row) => ({
        sessionId: text(row, 'sessionId', 'Sessions'),
        userId: text(row, 'userId', 'Sessions'),
        flowReferenceId,
        entrypoint,
        lastSeen: text(row, 'startedAt', 'Sessions'),
      }));
    }
    return;
  }
  const field = selector.kind === 'flow' ? 'flowReferenceId' : 'entityReferenceId';
  const query: KeysetQuery = {
    collection: 'ExecutedSteps',
    filter: [`${field} eq ${literal(selector.ref)}`, ...windowFilter('timestamp', selector)].join(' and '),
    key: 'sessionId',
    keyIsTime: false,
    desc: false,
    orderby: 'sessionId asc,timestamp desc',
    select: STEP_FIELDS,
    pageSize,
  };
  let previous: string | undefined;
  for await (const page of keysetPages(options.odata, query)) {
    const firsts: Record<string, unknown>[] = [];
    for (const row of page) {
      const id = text(row, 'sessionId', 'ExecutedSteps');
      if (id === previous) continue;
      previous = id;
      firsts.push(row);
    }
    const rows = selector.kind === 'flow' ? firsts : await lastSteps(firsts, selector, options);
    yield rows.flatMap((row) =>
      row === undefined
        ? []
        : [
            {
              sessionId: text(row, 'sessionId', 'ExecutedSteps'),
              userId: text(row, 'userId', 'ExecutedSteps'),
              flowReferenceId: text(row, 'flowReferenceId', 'ExecutedSteps'),
              entrypoint: entrypointOf(row),
              lastSeen: text(row, 'timestamp', 'ExecutedSteps'),
            },
          ],
    );
  }
}

/**
 * `node`: of the sessions that passed the node in the window, those whose last recorded step is that node
 * (and falls in the window). One small query per candidate, a few in flight: OData has no "last per group".
 */
async function lastSteps(
  candidates: Record<string, unknown>[],
  selector: Selector,
  options: SelectOptions,
): Promise<(Record<string, unknown> | undefined)[]> {
  const out = new Array<Record<string, unknown> | undefined>(candidates.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < candidates.length) {
      const i = next++;
      const id = text(candidates[i]!, 'sessionId', 'ExecutedSteps');
      const page = await options.odata.get('ExecutedSteps', {
        $filter: `sessionId eq ${literal(id)}`,
        $orderby: 'timestamp desc',
        $top: '1',
        $select: STEP_FIELDS.join(','),
      });
      const last = page.value[0];
      const at = last === undefined ? NaN : Date.parse(String(last['timestamp']));
      const inWindow =
        (selector.since === undefined || at >= Date.parse(selector.since)) &&
        (selector.until === undefined || at < Date.parse(selector.until));
      out[i] =
        last !== undefined && last['entityReferenceId'] === selector.ref && inWindow ? last : undefined;
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 8, candidates.length) }, worker));
  return out;
}

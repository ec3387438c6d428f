/**
 * Keyset paging over one OData collection. A large `$skip` times out on Cognigy, and the subset we rely
 * on has no `or`, so the cursor is "key at or past the last key seen" plus a `$skip` of the rows already
 * taken at exactly that key (a tie group: one session's steps, or records of one instant), which stays
 * small. The order must be total for this to be exact: the key first, then a tiebreaker.
 *
 * Some Cognigy versions answer 500 instead of an empty page once the cursor passes the last record. A
 * page that comes back short ends the list without asking again; a 500 after a full page is checked with
 * `$count` over the whole query: if every record was taken, the 500 was "past the end"; if not, it was
 * a real failure, retried and then reported.
 */
import { CognigyResetError } from '../errors.js';
import type { Collection, ODataClient } from './odata-client.js';

export interface KeysetQuery {
  collection: Collection;
  /** The selector and its window: `a eq 'x' and t ge 2026-…`. */
  filter: string;
  /** The keyset field, first in `orderby`. */
  key: string;
  keyIsTime: boolean;
  desc: boolean;
  /** `$orderby`: the key, then a tiebreaker that makes the order total. */
  orderby: string;
  select: readonly string[];
  pageSize: number;
}

/**
 * An OData literal. Times are quoted too: Cognigy's v2.4 documentation writes
 * `timestamp gt '2021-01-01T00:00:00.000Z'` (its v2.3 pages wrote them bare).
 */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Pages of rows in the query's order; every row exactly once. */
export async function* keysetPages(
  client: ODataClient,
  q: KeysetQuery,
): AsyncGenerator<Record<string, unknown>[]> {
  let cursor: { key: string; taken: number } | undefined;
  let received = 0;
  for (;;) {
    const filter =
      cursor === undefined
        ? q.filter
        : `${q.filter === '' ? '' : `${q.filter} and `}${q.key} ${q.desc ? 'le' : 'ge'} ${literal(cursor.key)}`;
    const params: Record<string, string> = {
      ...(filter === '' ? {} : { $filter: filter }),
      $orderby: q.orderby,
      $top: String(q.pageSize),
      $select: q.select.join(','),
      ...(cursor !== undefined && cursor.taken > 0 ? { $skip: String(cursor.taken) } : {}),
    };
    const page = (await client.get(q.collection, params, () => allTaken(client, q, received))).value;
    if (page.length === 0) return;
    received += page.length;
    yield page;
    if (page.length < q.pageSize) return;
    const last = keyOf(page[page.length - 1]!, q);
    let taken = cursor !== undefined && sameKey(cursor.key, last, q.keyIsTime) ? cursor.taken : 0;
    for (const row of page) if (sameKey(keyOf(row, q), last, q.keyIsTime)) taken++;
    cursor = { key: last, taken };
  }
}

function keyOf(row: Record<string, unknown>, q: KeysetQuery): string {
  const value = row[q.key];
  if (typeof value !== 'string' || (q.keyIsTime && Number.isNaN(Date.parse(value)))) {
    throw new CognigyResetError('CR_ERR_SELECT_BAD_ANSWER', `OData ${q.collection}: a row lacks ${q.key}`);
  }
  return value;
}

function sameKey(a: string, b: string, isTime: boolean): boolean {
  return isTime ? Date.parse(a) === Date.parse(b) : a === b;
}

/** Whether the query holds no more records than were received: then a 500 was "past the end". */
async function allTaken(client: ODataClient, q: KeysetQuery, received: number): Promise<boolean> {
  const page = await client.get(q.collection, {
    ...(q.filter === '' ? {} : { $filter: q.filter }),
    $count: 'true',
    $top: '0',
  });
  if (page.count === undefined) {
    throw new CognigyResetError(
      'CR_ERR_SELECT_BAD_ANSWER',
      `OData ${q.collection}: $count answered no count`,
    );
  }
  return page.count <= received;
}

/**
 * Cognigy's OData analytics endpoint, generated from the session store (docs/selectors.md):
 *   GET /v2.4/ExecutedSteps?apikey=…   GET /v2.4/Sessions?apikey=…
 * The subset our client uses: `$filter` with `eq ge gt lt le` joined by `and`, `$select`, `$orderby`,
 * `$top`, `$skip`, `$count`. The key is any token the emulator accepts. Faults: `odataFailEvery` (every Nth
 * request answers 503), `odataFailFrom` (from the Nth request after it is set, every request answers 500) and
 * `odataEmpty500` (500 instead of an empty page, as some Cognigy versions answer past the newest record).
 */
import type { IncomingMessage } from 'node:http';
import { analyticsIndex, type AnalyticsCollection, type FieldValue } from './analytics-index.js';
import type { EmulatorContext } from './context.js';
import type { HttpResult, Route } from './http-door.js';
import { bump } from './stats.js';

const MAX_TOP = 10_000;
type Op = 'eq' | 'ge' | 'gt' | 'lt' | 'le';

interface Condition {
  field: string;
  op: Op;
  value: string | number;
}

class ODataError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** `field op literal [and …]`; literals: 'text' ('' escapes a quote), numbers, ISO times, datetime'…'. */
export function parseFilter(text: string, collection: AnalyticsCollection): Condition[] {
  const conditions: Condition[] = [];
  const pattern =
    /^\s*\(?\s*([A-Za-z_][A-Za-z0-9_]*)\s+(eq|ge|gt|lt|le)\s+('(?:[^']|'')*'|datetime'[^']*'|[0-9TZ:.+-]+)\s*\)?\s*(?:and\s+|$)/;
  let rest = text;
  while (rest.trim() !== '') {
    const m = pattern.exec(rest);
    if (m === null)
      throw new ODataError(400, `cannot parse $filter near ${JSON.stringify(rest.slice(0, 40))}`);
    const [whole, field, op, literal] = m as unknown as [string, string, Op, string];
    if (!collection.fields.includes(field)) throw new ODataError(400, `unknown property ${field}`);
    let raw: string = literal;
    if (raw.startsWith('datetime')) raw = raw.slice(9, -1);
    else if (raw.startsWith("'")) raw = raw.slice(1, -1).replace(/''/g, "'");
    let value: string | number = raw;
    if (field === collection.timeField) {
      value = Date.parse(raw);
      if (Number.isNaN(value)) throw new ODataError(400, `${field}: not a date-time: ${raw}`);
    }
    conditions.push({ field, op, value });
    rest = rest.slice(whole.length);
  }
  return conditions;
}

function compare(a: FieldValue, b: string | number, op: Op): boolean {
  if (a === null) return false;
  const c = a < b ? -1 : a > b ? 1 : 0;
  switch (op) {
    case 'eq':
      return c === 0;
    case 'ge':
      return c >= 0;
    case 'gt':
      return c > 0;
    case 'lt':
      return c < 0;
    case 'le':
      return c <= 0;
  }
}

/** The first position in `order` whose key is not below `value` (`strict`: above it). */
function bound(
  order: Uint32Array,
  key: (row: number) => string | number,
  value: string | number,
  strict: boolean,
) {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = key(order[mid]!);
    if (k < value || (strict && k === value)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Query {
  conditions: Condition[];
  orderby: { field: string; desc: boolean }[];
  top: number;
  skip: number;
  count: boolean;
  select: string[] | undefined;
}

export function runQuery(
  c: AnalyticsCollection,
  q: Query,
): { rows: Record<string, unknown>[]; count: number } {
  const matches = (row: number): boolean =>
    q.conditions.every((k) => compare(c.value(k.field, row), k.value, k.op));
  const first = q.orderby[0];
  const second = q.orderby[1];
  let order: Uint32Array;
  let key: (row: number) => string | number;
  let keyField: string;
  let desc = first?.desc ?? false;
  const oneSession = q.conditions.some((k) => k.field === 'sessionId' && k.op === 'eq');
  if (oneSession && (first === undefined || (first.field === c.timeField && second === undefined))) {
    // One session's records lie together in the session order, newest first.
    order = c.bySession;
    key = c.sessionId;
    keyField = 'sessionId';
    desc = first !== undefined && !first.desc;
  } else if (
    first === undefined ||
    (first.field === c.timeField &&
      (second === undefined || (second.field === 'sessionId' && second.desc === desc)))
  ) {
    order = c.byTime;
    key = c.time;
    keyField = c.timeField;
  } else if (
    first.field === 'sessionId' &&
    (second === undefined || (second.field === c.timeField && second.desc !== desc))
  ) {
    order = c.bySession;
    key = c.sessionId;
    keyField = 'sessionId';
  } else {
    // Any other order: sorted on demand (the client never asks for one).
    const rows = [...c.byTime].filter(matches);
    rows.sort((a, b) => {
      for (const { field, desc: d } of q.orderby) {
        const x = c.value(field, a) ?? '';
        const y = c.value(field, b) ?? '';
        if (x < y) return d ? 1 : -1;
        if (x > y) return d ? -1 : 1;
      }
      return 0;
    });
    order = Uint32Array.from(rows);
    key = () => 0;
    keyField = '';
    desc = false;
  }
  let lo = 0;
  let hi = order.length;
  for (const k of q.conditions) {
    if (k.field !== keyField) continue;
    if (k.op === 'eq' || k.op === 'ge') lo = Math.max(lo, bound(order, key, k.value, false));
    if (k.op === 'gt') lo = Math.max(lo, bound(order, key, k.value, true));
    if (k.op === 'eq' || k.op === 'le') hi = Math.min(hi, bound(order, key, k.value, true));
    if (k.op === 'lt') hi = Math.min(hi, bound(order, key, k.value, false));
  }
  const rows: Record<string, unknown>[] = [];
  let seen = 0;
  let count = 0;
  for (let p = 0; p < hi - lo; p++) {
    const row = order[desc ? hi - 1 - p : lo + p]!;
    if (!matches(row)) continue;
    count++;
    if (seen++ < q.skip) continue;
    if (rows.length < q.top) rows.push(shape(c, row, q.select));
    else if (!q.count) break;
  }
  return { rows, count };
}

function shape(c: AnalyticsCollection, row: number, select: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of select ?? c.fields) {
    const value = c.value(field, row);
    out[field] = field === c.timeField ? new Date(value as number).toISOString() : value;
  }
  return out;
}

function integerParam(url: URL, name: string, fallback: number): number {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n))
    throw new ODataError(400, `${name} must be a non-negative integer`);
  return n;
}

function parseQuery(url: URL, c: AnalyticsCollection): Query {
  const known = new Set(['$filter', '$select', '$orderby', '$top', '$skip', '$count', 'apikey']);
  for (const name of url.searchParams.keys())
    if (!known.has(name)) throw new ODataError(400, `unsupported query option ${name}`);
  const orderby = (url.searchParams.get('$orderby') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const [field, dir = 'asc'] = s.split(/\s+/) as [string, string?];
      if (!c.fields.includes(field) || (dir !== 'asc' && dir !== 'desc'))
        throw new ODataError(400, `bad $orderby ${s}`);
      return { field, desc: dir === 'desc' };
    });
  const selectText = url.searchParams.get('$select');
  const select = selectText === null ? undefined : selectText.split(',').map((s) => s.trim());
  for (const field of select ?? [])
    if (!c.fields.includes(field)) throw new ODataError(400, `unknown property ${field}`);
  const count = url.searchParams.get('$count');
  if (count !== null && count !== 'true' && count !== 'false')
    throw new ODataError(400, '$count must be true or false');
  return {
    conditions: parseFilter(url.searchParams.get('$filter') ?? '', c),
    orderby,
    top: Math.min(integerParam(url, '$top', MAX_TOP), MAX_TOP),
    skip: integerParam(url, '$skip', 0),
    count: count === 'true',
    select,
  };
}

export function odataRoutes(ctx: EmulatorContext): Route[] {
  let requests = 0;
  let failFrom = { value: 0, base: 0 };
  const handle = (_req: IncomingMessage, name: 'ExecutedSteps' | 'Sessions', url: URL): HttpResult => {
    const n = ++requests;
    try {
      if (ctx.tokens.check(url.searchParams.get('apikey') ?? undefined) === undefined) {
        throw new ODataError(401, 'apikey missing, unknown or expired');
      }
      const f = ctx.faults;
      // Counted from the request that first sees this setting, so a test can set it mid-run.
      if (f.odataFailFrom !== failFrom.value) failFrom = { value: f.odataFailFrom, base: n - 1 };
      if (f.odataFailFrom > 0 && n - failFrom.base >= f.odataFailFrom) {
        throw new ODataError(500, 'internal server error');
      }
      if (f.odataFailEvery > 0 && n % f.odataFailEvery === 0)
        throw new ODataError(503, 'service unavailable');
      const index = analyticsIndex(ctx.store, f.seed);
      const collection = name === 'Sessions' ? index.sessions : index.steps;
      const query = parseQuery(url, collection);
      const { rows, count } = runQuery(collection, query);
      if (f.odataEmpty500 === 1 && rows.length === 0 && query.top > 0) {
        throw new ODataError(500, 'internal server error');
      }
      bump(ctx.stats.rest, `odata ${name} 200`);
      return {
        status: 200,
        body: {
          '@odata.context': `$metadata#${name}`,
          ...(query.count ? { '@odata.count': count } : {}),
          value: rows,
        },
      };
    } catch (err) {
      if (!(err instanceof ODataError)) throw err;
      bump(ctx.stats.rest, `odata ${name} ${err.status}`);
      return { status: err.status, body: { error: { code: String(err.status), message: err.message } } };
    }
  };
  return (['ExecutedSteps', 'Sessions'] as const).map((name) => ({
    method: 'GET',
    pattern: new RegExp(`^/v2\\.4/${name}$`),
    handler: (req, _params, url) => handle(req, name, url),
  }));
}

/**
 * The emulator's analytics data, column by column: every executed step and every session of the seeded
 * sessions, each with two orders (by time, and by session id in string order), so that a keyset page is
 * a binary search and a short scan rather than a sort per request. Built on first use and rebuilt when the
 * seeded count or the seed changes.
 */
import {
  SEED_ENDPOINTS,
  SEED_FLOWS,
  seededHistory,
  seededUserId,
  stepsAnchor,
  type SeededHistory,
} from './steps.js';
import { SEED_ENTRYPOINT, type SessionStore } from './store.js';

export type FieldValue = string | number | null;

/** One OData collection over the seeded sessions. */
export interface AnalyticsCollection {
  readonly size: number;
  /** The time field (`timestamp`, `startedAt`): its values are ms since epoch. */
  readonly timeField: string;
  readonly fields: readonly string[];
  value: (field: string, row: number) => FieldValue;
  time: (row: number) => number;
  sessionId: (row: number) => string;
  /** Rows by (time, session id, row) ascending. */
  readonly byTime: Uint32Array;
  /** Rows by (session id ascending, time descending). */
  readonly bySession: Uint32Array;
}

export interface AnalyticsIndex {
  readonly steps: AnalyticsCollection;
  readonly sessions: AnalyticsCollection;
}

const sessionIdOf = (k: number): string => `session-${k}`;

function build(count: number, seed: number, anchor: number): AnalyticsIndex {
  // Rank of each session number in the string order of its id, so comparisons are numeric.
  const order = Uint32Array.from({ length: count }, (_, i) => i + 1).sort((a, b) =>
    sessionIdOf(a) < sessionIdOf(b) ? -1 : 1,
  );
  const rank = new Uint32Array(count + 1);
  order.forEach((k, r) => (rank[k] = r));
  const endpoint = new Uint8Array(count + 1);
  const started = new Float64Array(count + 1);
  const capacity = count * 5;
  const session = new Uint32Array(capacity);
  const times = new Float64Array(capacity);
  const flow = new Uint8Array(capacity);
  const node = new Uint8Array(capacity);
  let n = 0;
  for (let k = 1; k <= count; k++) {
    const h = seededHistory(k, seed, anchor);
    endpoint[k] = h.endpoint;
    started[k] = h.times[0]!;
    for (let i = 0; i < h.times.length; i++, n++) {
      session[n] = k;
      times[n] = h.times[i]!;
      flow[n] = h.flows[i]!;
      node[n] = h.nodes[i]!;
    }
  }
  const stepTime = (row: number): number => times[row]!;
  const stepRank = (row: number): number => rank[session[row]!]!;
  const steps: AnalyticsCollection = {
    size: n,
    timeField: 'timestamp',
    fields: [
      'sessionId',
      'userId',
      'flowReferenceId',
      'entityReferenceId',
      'timestamp',
      'projectId',
      'snapshotId',
      'endpointUrlToken',
    ],
    time: stepTime,
    sessionId: (row) => sessionIdOf(session[row]!),
    value: (field, row) => {
      const k = session[row]!;
      switch (field) {
        case 'sessionId':
          return sessionIdOf(k);
        case 'userId':
          return seededUserId(k);
        case 'flowReferenceId':
          return SEED_FLOWS[flow[row]!]!.referenceId;
        case 'entityReferenceId':
          return SEED_FLOWS[flow[row]!]!.nodes[node[row]!]!;
        case 'timestamp':
          return times[row]!;
        case 'projectId':
          return SEED_ENTRYPOINT;
        case 'snapshotId':
          return null;
        case 'endpointUrlToken':
          return SEED_ENDPOINTS[endpoint[k]!]!.URLToken;
        default:
          return null;
      }
    },
    ...orders(n, stepTime, stepRank),
  };
  const sessionTime = (row: number): number => started[row + 1]!;
  const sessionRank = (row: number): number => rank[row + 1]!;
  let cached: { k: number; h: SeededHistory } | undefined;
  const sessions: AnalyticsCollection = {
    size: count,
    timeField: 'startedAt',
    fields: [
      'sessionId',
      'userId',
      'startedAt',
      'endpointReferenceId',
      'endpointUrlToken',
      'projectId',
      'snapshotId',
      'stepPath',
    ],
    time: sessionTime,
    sessionId: (row) => sessionIdOf(row + 1),
    value: (field, row) => {
      const k = row + 1;
      const e = SEED_ENDPOINTS[endpoint[k]!]!;
      switch (field) {
        case 'sessionId':
          return sessionIdOf(k);
        case 'userId':
          return seededUserId(k);
        case 'startedAt':
          return started[k]!;
        case 'endpointReferenceId':
          return e.referenceId;
        case 'endpointUrlToken':
          return e.URLToken;
        case 'projectId':
          return SEED_ENTRYPOINT;
        case 'snapshotId':
          return null;
        case 'stepPath': {
          if (cached?.k !== k) cached = { k, h: seededHistory(k, seed, anchor) };
          const h = cached.h;
          return h.flows.map((f, i) => SEED_FLOWS[f]!.nodes[h.nodes[i]!]!).join(',');
        }
        default:
          return null;
      }
    },
    ...orders(count, sessionTime, sessionRank),
  };
  return { steps, sessions };
}

function orders(
  size: number,
  time: (row: number) => number,
  rank: (row: number) => number,
): { byTime: Uint32Array; bySession: Uint32Array } {
  const rows = (): Uint32Array => Uint32Array.from({ length: size }, (_, i) => i);
  return {
    byTime: rows().sort((a, b) => time(a) - time(b) || rank(a) - rank(b) || a - b),
    bySession: rows().sort((a, b) => rank(a) - rank(b) || time(b) - time(a) || a - b),
  };
}

const built = new WeakMap<SessionStore, { count: number; seed: number; index: AnalyticsIndex }>();

export function analyticsIndex(store: SessionStore, seed: number): AnalyticsIndex {
  const count = store.seededCount;
  const hit = built.get(store);
  if (hit !== undefined && hit.count === count && hit.seed === seed) return hit.index;
  const index = build(count, seed, stepsAnchor(store));
  built.set(store, { count, seed, index });
  return index;
}

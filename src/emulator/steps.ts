/**
 * Executed steps of the seeded sessions: the analytics record the OData door serves and
 * `GET /emulator/sessions/:id` shows. Deterministic from the store's seed and session number, anchored at
 * the second the store's steps were first asked for, so that every door sees the same history. Sessions
 * made with `POST /emulator/sessions` have no recorded steps.
 */
import { createRandom } from './prng.js';
import { SEED_ENTRYPOINT, type SessionStore } from './store.js';

export interface SeedFlow {
  _id: string;
  referenceId: string;
  name: string;
  nodes: readonly string[];
}

export interface SeedEndpoint {
  _id: string;
  referenceId: string;
  name: string;
  flowId: string;
  entrypoint: string;
  URLToken: string;
  channel: string;
}

export const SEED_FLOWS: readonly SeedFlow[] = [
  {
    _id: '64a0c0de00000000000000f1',
    referenceId: 'f10c0de0-0000-4000-8000-000000000001',
    name: 'Main',
    nodes: ['main-start', 'main-menu', 'main-handover'],
  },
  {
    _id: '64a0c0de00000000000000f2',
    referenceId: 'f10c0de0-0000-4000-8000-000000000002',
    name: 'Orders',
    nodes: ['orders-ask-number', 'orders-ask-address', 'orders-confirm'],
  },
  {
    _id: '64a0c0de00000000000000f3',
    referenceId: 'f10c0de0-0000-4000-8000-000000000003',
    name: 'Support',
    nodes: ['support-triage', 'support-wait-agent'],
  },
];

export const SEED_ENDPOINTS: readonly SeedEndpoint[] = [
  {
    _id: '64a0c0de00000000000000e1',
    referenceId: 'e1d0c0de-0000-4000-8000-000000000001',
    name: 'Webchat',
    flowId: SEED_FLOWS[0]!._id,
    entrypoint: SEED_ENTRYPOINT,
    URLToken: 'dev-url-token',
    channel: 'webchat3',
  },
  {
    _id: '64a0c0de00000000000000e2',
    referenceId: 'e1d0c0de-0000-4000-8000-000000000002',
    name: 'Voice',
    flowId: SEED_FLOWS[2]!._id,
    entrypoint: SEED_ENTRYPOINT,
    URLToken: 'dev-voice-token',
    channel: 'voiceGateway2',
  },
];

/** Steps of a session end within this span before the anchor. */
const SPAN_MS = 3 * 24 * 3600 * 1000;
const MAX_STEPS = 5;

export interface ExecutedStep {
  flowReferenceId: string;
  node: string;
  timestamp: string;
}

/** One session's generated history: its endpoint and steps (flow index, node index, ms since epoch). */
export interface SeededHistory {
  endpoint: number;
  flows: number[];
  nodes: number[];
  times: number[];
}

/** The history of seeded session `k` (1-based): 2 to 5 steps, seconds apart, within the last 3 days. */
export function seededHistory(k: number, seed: number, anchorMs: number): SeededHistory {
  const random = createRandom((Math.imul(seed, 0x9e3779b1) + k) >>> 0);
  const endpoint = random() < 0.7 ? 0 : 1;
  const entryFlow = SEED_FLOWS.findIndex((f) => f._id === SEED_ENDPOINTS[endpoint]!.flowId);
  const count = 2 + Math.floor(random() * (MAX_STEPS - 1));
  let at = anchorMs - 3_600_000 - Math.floor(random() * (SPAN_MS / 1000)) * 1000;
  const history: SeededHistory = { endpoint, flows: [], nodes: [], times: [] };
  for (let i = 0; i < count; i++) {
    const flow = i === 0 ? entryFlow : Math.floor(random() * SEED_FLOWS.length);
    const node = i === 0 ? 0 : Math.floor(random() * SEED_FLOWS[flow]!.nodes.length);
    history.flows.push(flow);
    history.nodes.push(node);
    history.times.push(at);
    at += (1 + Math.floor(random() * 600)) * 1000;
  }
  return history;
}

/** The user id the store gives seeded session `k` (kept in step with `store.ts`). */
export function seededUserId(k: number): string {
  return `user-${k}`;
}

const anchors = new WeakMap<SessionStore, number>();

/** The store's anchor: fixed at first use, to the second. */
export function stepsAnchor(store: SessionStore): number {
  let anchor = anchors.get(store);
  if (anchor === undefined) {
    anchor = Math.floor(Date.now() / 1000) * 1000;
    anchors.set(store, anchor);
  }
  return anchor;
}

const SEEDED_ID = /^session-([1-9][0-9]{0,9})$/;

/** The session's executed steps, oldest first, as `GET /emulator/sessions/:id` shows them. */
export function executedSteps(store: SessionStore, sessionId: string, seed: number): ExecutedStep[] {
  const m = SEEDED_ID.exec(sessionId);
  if (m === null || Number(m[1]) > store.seededCount) return [];
  const h = seededHistory(Number(m[1]), seed, stepsAnchor(store));
  return h.flows.map((flow, i) => ({
    flowReferenceId: SEED_FLOWS[flow]!.referenceId,
    node: SEED_FLOWS[flow]!.nodes[h.nodes[i]!]!,
    timestamp: new Date(h.times[i]!).toISOString(),
  }));
}

/** The reference id of the endpoint a seeded session started on; null for sessions made by hand. */
export function startedOn(store: SessionStore, sessionId: string, seed: number): string | null {
  const m = SEEDED_ID.exec(sessionId);
  if (m === null || Number(m[1]) > store.seededCount) return null;
  return SEED_ENDPOINTS[seededHistory(Number(m[1]), seed, stepsAnchor(store)).endpoint]!.referenceId;
}

/**
 * The emulator's session store: one store behind every door. Seeded sessions (`session-1` … `session-N`)
 * are made on first use, so a million seeded sessions cost nothing until they are touched. Each Flow has a
 * default context (what a REST context reset puts back, as on a real tenant): set with `setFlowDefault`,
 * or else derived from the Flow's reference id, non-empty for most Flows.
 */
import type { ResetDirective } from '../protocol/index.js';
import { hashUnit } from './prng.js';

export type FlowState = 'ACTIVE' | 'RESET';
export type DialogState = 'WARM' | 'COLD';
export type EngineState = 'RUNNING' | 'INITIALIZED';

export interface HistoryTurn {
  role: 'user' | 'bot';
  text: string;
}

export interface SessionRecord {
  sessionId: string;
  /** `null`: seeded without a tenant, so it answers to any tenant and bot. */
  tenant: string | null;
  botId: string | null;
  userId: string;
  flowReferenceId: string;
  entrypoint: string;
  flowState: FlowState;
  dialogState: DialogState;
  engineState: EngineState;
  variables: Record<string, unknown>;
  history: HistoryTurn[];
  nluContext: Record<string, unknown> | null;
  /** A webhook call in progress: how long it still runs once a reset arrives; `null` = never ends. */
  blockingMs: number | null | undefined;
  /** When the blocking action ends and a pending flow reset lands (ms since epoch; Infinity = never). */
  flowResetDueAt: number | undefined;
  /** The engine rejects resets of this session (`REJECTED`). */
  rejects: boolean;
  /** The engine fails on this session: close 1011. */
  engineError: boolean;
  resets: number;
  createdAt: string;
  updatedAt: string;
}

/** What `POST /emulator/sessions` and `store.create()` accept. */
export interface SessionSpec {
  sessionId: string;
  tenant?: string | null;
  botId?: string | null;
  userId?: string;
  flowReferenceId?: string;
  entrypoint?: string;
  flowState?: FlowState;
  dialogState?: DialogState;
  engineState?: EngineState;
  variables?: Record<string, unknown>;
  history?: HistoryTurn[];
  nluContext?: Record<string, unknown> | null;
  /** In a blocking action that ends this many ms after a reset arrives. */
  blockingMs?: number;
  /** In a blocking action that never ends: the flow never leaves ACTIVE. */
  stuck?: boolean;
  rejects?: boolean;
  engineError?: boolean;
}

export interface SeedOptions {
  count: number;
  tenant: string | null;
  botId: string | null;
  /** Share of seeded sessions in a blocking action, decided per session from `seed`. */
  blockingShare: number;
  blockingMs: number;
  seed: number;
}

export type ResetResult = 'RESET_COMPLETE' | 'SESSION_NOT_FOUND' | 'REJECTED';

/** The project (entrypoint) every seeded session belongs to: 24 hex characters, like a Cognigy id. */
export const SEED_ENTRYPOINT = '5f1e2d3c4b5a69788796a5b4';
const SEEDED_ID = /^session-([1-9][0-9]{0,9})$/;

function seededFlowReferenceId(k: number): string {
  return `7c0e5a4e-0000-4000-8000-${k.toString(16).padStart(12, '0')}`;
}

/**
 * The default context of a Flow nobody set one for: empty for about one Flow in five (a Flow whose
 * context editor was never touched), otherwise a few keys, as a real Flow's context tab holds.
 */
export function derivedFlowDefault(flowReferenceId: string): Record<string, unknown> {
  if (hashUnit(flowReferenceId, 0x5eed) < 0.2) return {};
  return { locale: 'en-US', step: 'start', retries: 0 };
}

function matches(record: SessionRecord, tenant: string | undefined, botId: string | undefined): boolean {
  if (tenant === undefined) return true;
  return (
    (record.tenant === null || record.tenant === tenant) && (record.botId === null || record.botId === botId)
  );
}

export class SessionStore {
  readonly #sessions = new Map<string, SessionRecord>();
  /** Seeded ids that were deleted, so they are not made again on the next look-up. */
  readonly #deleted = new Set<string>();
  readonly #flowDefaults = new Map<string, Record<string, unknown>>();
  /** How many sessions were reset exactly k times, for each k ≥ 1: kept as resets land, read in O(k). */
  readonly #resetCounts = new Map<number, number>();
  #seed: SeedOptions;
  #now: () => number;

  constructor(seed: Partial<SeedOptions> = {}, now: () => number = Date.now) {
    this.#seed = {
      count: seed.count ?? 0,
      tenant: seed.tenant ?? null,
      botId: seed.botId ?? null,
      blockingShare: seed.blockingShare ?? 0,
      blockingMs: seed.blockingMs ?? 1500,
      seed: seed.seed ?? 1,
    };
    this.#now = now;
  }

  /** Seeds `session-1` … `session-count` (made lazily; see the file comment). */
  seed(options: Partial<SeedOptions>): void {
    this.#seed = { ...this.#seed, ...options };
  }

  get seededCount(): number {
    return this.#seed.count;
  }

  /** Sessions that exist now, counting seeded ones that have not yet been touched. */
  get size(): number {
    let size = this.#seed.count;
    for (const id of this.#sessions.keys()) if (!this.#isSeededId(id)) size++;
    return size - this.#deletedSeeded();
  }

  #deletedSeeded(): number {
    let n = 0;
    for (const id of this.#deleted) if (this.#isSeededId(id)) n++;
    return n;
  }

  #isSeededId(id: string): boolean {
    const m = SEEDED_ID.exec(id);
    return m !== null && Number(m[1]) <= this.#seed.count;
  }

  #materialise(id: string): SessionRecord | undefined {
    const m = SEEDED_ID.exec(id);
    if (m === null || this.#deleted.has(id)) return undefined;
    const k = Number(m[1]);
    if (k > this.#seed.count) return undefined;
    const blocking = this.#seed.blockingShare > 0 && hashUnit(id, this.#seed.seed) < this.#seed.blockingShare;
    const flowReferenceId = seededFlowReferenceId(k);
    const record = this.#build({
      sessionId: id,
      tenant: this.#seed.tenant,
      botId: this.#seed.botId,
      userId: `user-${k}`,
      flowReferenceId,
      entrypoint: SEED_ENTRYPOINT,
      // The session started from its Flow's default context and has moved on from it.
      variables: {
        ...this.flowDefault(flowReferenceId),
        customerName: `Customer ${k}`,
        orderId: `ORD-${100000 + k}`,
        step: 'collect-address',
      },
      history: [
        { role: 'user', text: 'Where is my order?' },
        { role: 'bot', text: 'Let me look that up. What is your order number?' },
        { role: 'user', text: `ORD-${100000 + k}` },
        { role: 'bot', text: 'Thanks. Which address should we deliver to?' },
      ],
      nluContext: { intent: 'order.status', slots: { orderId: `ORD-${100000 + k}` }, state: 'default' },
      ...(blocking ? { blockingMs: this.#seed.blockingMs } : {}),
    });
    this.#sessions.set(id, record);
    return record;
  }

  #build(spec: SessionSpec): SessionRecord {
    const at = new Date(this.#now()).toISOString();
    return {
      sessionId: spec.sessionId,
      tenant: spec.tenant ?? null,
      botId: spec.botId ?? null,
      userId: spec.userId ?? `user-of-${spec.sessionId}`,
      flowReferenceId: spec.flowReferenceId ?? seededFlowReferenceId(0),
      entrypoint: spec.entrypoint ?? SEED_ENTRYPOINT,
      flowState: spec.flowState ?? 'ACTIVE',
      dialogState: spec.dialogState ?? 'WARM',
      engineState: spec.engineState ?? 'RUNNING',
      variables: spec.variables ?? { step: 'greeting' },
      history: spec.history ?? [{ role: 'user', text: 'hello' }],
      nluContext: spec.nluContext === undefined ? { intent: 'greeting', slots: {} } : spec.nluContext,
      blockingMs: spec.stuck === true ? null : spec.blockingMs,
      flowResetDueAt: undefined,
      rejects: spec.rejects ?? false,
      engineError: spec.engineError ?? false,
      resets: 0,
      createdAt: at,
      updatedAt: at,
    };
  }

  #countReset(record: SessionRecord): void {
    this.#moveResetCount(record.resets, record.resets + 1);
    record.resets++;
  }

  #moveResetCount(from: number, to: number): void {
    if (from > 0) {
      const left = (this.#resetCounts.get(from) ?? 0) - 1;
      if (left === 0) this.#resetCounts.delete(from);
      else this.#resetCounts.set(from, left);
    }
    if (to > 0) this.#resetCounts.set(to, (this.#resetCounts.get(to) ?? 0) + 1);
  }

  /**
   * Sessions by how many resets were applied to them (`{"1": n, "2": m}`): a client that sent a
   * session twice shows here. Sessions never reset are not counted.
   */
  resetsPerSession(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, n] of [...this.#resetCounts].sort((a, b) => a[0] - b[0])) out[String(k)] = n;
    return out;
  }

  /** Lands a pending flow reset once its blocking action has ended. */
  #settle(record: SessionRecord): SessionRecord {
    if (record.flowResetDueAt !== undefined && this.#now() >= record.flowResetDueAt) {
      record.flowState = 'RESET';
      record.flowResetDueAt = undefined;
      record.blockingMs = undefined;
      record.updatedAt = new Date(this.#now()).toISOString();
    }
    return record;
  }

  /** The session as it is now, or undefined. Scoped to a tenant and bot when they are given. */
  get(sessionId: string, tenant?: string, botId?: string): SessionRecord | undefined {
    const record = this.#sessions.get(sessionId) ?? this.#materialise(sessionId);
    if (record === undefined || !matches(record, tenant, botId)) return undefined;
    return this.#settle(record);
  }

  has(sessionId: string): boolean {
    return this.get(sessionId) !== undefined;
  }

  /** Creates a session; returns false when one of that id exists already. */
  create(spec: SessionSpec): boolean {
    if (this.has(spec.sessionId)) return false;
    this.#deleted.delete(spec.sessionId);
    this.#sessions.set(spec.sessionId, this.#build(spec));
    return true;
  }

  delete(sessionId: string): boolean {
    const existed = this.has(sessionId);
    const record = this.#sessions.get(sessionId);
    if (record !== undefined) this.#moveResetCount(record.resets, 0);
    this.#sessions.delete(sessionId);
    if (existed) this.#deleted.add(sessionId);
    return existed;
  }

  /**
   * Applies exactly what the directive names and no more. A flow in a blocking action keeps `ACTIVE`
   * until the action ends; the rest is cleared at once.
   */
  applyReset(directive: ResetDirective, tenant?: string, botId?: string): ResetResult {
    const record = this.get(directive.sessionId, tenant, botId);
    if (record === undefined) return 'SESSION_NOT_FOUND';
    if (record.rejects) return 'REJECTED';
    const matrix = directive.stateClearMatrix;
    if (matrix.flowState !== undefined) {
      if (record.blockingMs === undefined) record.flowState = 'RESET';
      else if (record.flowResetDueAt === undefined) {
        record.flowResetDueAt = record.blockingMs === null ? Infinity : this.#now() + record.blockingMs;
      }
    }
    if (matrix.dialogState !== undefined) record.dialogState = 'COLD';
    if (matrix.engineState !== undefined) record.engineState = 'INITIALIZED';
    const wipe = directive.contextWipeDirective;
    if (wipe.clearVariables) record.variables = {};
    if (wipe.clearHistory) record.history = [];
    if (wipe.clearNLUContext === true) record.nluContext = null;
    this.#countReset(record);
    record.updatedAt = new Date(this.#now()).toISOString();
    return 'RESET_COMPLETE';
  }

  /** Socket `processInput` with `resetFlow: true`: the Flow starts over (no blocking action survives it). */
  resetFlow(sessionId: string): void {
    const record = this.get(sessionId)!;
    record.flowState = 'RESET';
    record.flowResetDueAt = undefined;
    this.#countReset(record);
    record.updatedAt = new Date(this.#now()).toISOString();
  }

  /** The default context of a Flow: the one set for it, or else derived from its reference id. */
  flowDefault(flowReferenceId: string): Record<string, unknown> {
    const set = this.#flowDefaults.get(flowReferenceId);
    return set === undefined ? derivedFlowDefault(flowReferenceId) : structuredClone(set);
  }

  /** Sets the default context of a Flow (what a REST context reset of its sessions returns). */
  setFlowDefault(flowReferenceId: string, context: Record<string, unknown>): void {
    this.#flowDefaults.set(flowReferenceId, structuredClone(context));
  }

  /** REST `context/reset`: the context (variables) back to the default context of the session's Flow. */
  resetContext(sessionId: string): Record<string, unknown> {
    const record = this.get(sessionId)!;
    record.variables = this.flowDefault(record.flowReferenceId);
    this.#countReset(record);
    record.updatedAt = new Date(this.#now()).toISOString();
    return record.variables;
  }

  /** REST `state/reset`: the NLU state back to its default (no NLU context left). */
  resetNluState(sessionId: string): void {
    const record = this.get(sessionId)!;
    record.nluContext = null;
    record.updatedAt = new Date(this.#now()).toISOString();
  }

  injectContext(sessionId: string, context: Record<string, unknown>): Record<string, unknown> {
    const record = this.get(sessionId)!;
    record.variables = { ...record.variables, ...context };
    record.updatedAt = new Date(this.#now()).toISOString();
    return record.variables;
  }

  injectNluState(sessionId: string, state: string): void {
    const record = this.get(sessionId)!;
    record.nluContext = { ...(record.nluContext ?? {}), state };
    record.updatedAt = new Date(this.#now()).toISOString();
  }

  /** Every stored (touched or created) session, for inspection and stats. */
  *touched(): IterableIterator<SessionRecord> {
    for (const record of this.#sessions.values()) yield this.#settle(record);
  }
}

/** The full state as `GET /emulator/sessions/:id` shows it. */
export function sessionView(record: SessionRecord): Record<string, unknown> {
  return {
    sessionId: record.sessionId,
    tenant: record.tenant,
    botId: record.botId,
    userId: record.userId,
    flowReferenceId: record.flowReferenceId,
    entrypoint: record.entrypoint,
    flowState: record.flowState,
    dialogState: record.dialogState,
    engineState: record.engineState,
    variables: record.variables,
    history: record.history,
    historyLength: record.history.length,
    nluContext: record.nluContext,
    blocking:
      record.blockingMs === undefined
        ? null
        : { durationMs: record.blockingMs, flowResetPending: record.flowResetDueAt !== undefined },
    rejects: record.rejects,
    engineError: record.engineError,
    resets: record.resets,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

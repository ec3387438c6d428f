/** Typed messages of the runtime WebSocket protocol (the seed's API; docs/transports.md describes it). */
import type { STATE_RESET_VALUES } from './constraints.js';

export type StateLayer = keyof typeof STATE_RESET_VALUES;

export type StateClearMatrix = { [K in StateLayer]?: (typeof STATE_RESET_VALUES)[K] };

export interface ContextWipeDirective {
  clearVariables: boolean;
  clearHistory: boolean;
  clearNLUContext?: boolean;
}

/** The reset directive: one atomic `SEND` frame. */
export interface ResetDirective {
  type: 'SEND';
  sessionId: string;
  stateClearMatrix: StateClearMatrix;
  contextWipeDirective: ContextWipeDirective;
  maxDurationSec?: number;
  timestamp: string;
  requestId?: string;
}

/** The state check that verifies a reset. */
export interface StateCheckRequest {
  type: 'QUERY';
  sessionId: string;
  request: 'STATE_CHECK';
  requestId?: string;
}

export type ClientFrame = ResetDirective | StateCheckRequest;

export const ANSWER_STATUSES = ['RESET_COMPLETE', 'SESSION_NOT_FOUND', 'REJECTED', 'RATE_LIMITED'] as const;
export type KnownStatus = (typeof ANSWER_STATUSES)[number];

/** The engine's answer to a SEND (and, for an unknown session, to a QUERY). */
export interface StatusAnswer {
  kind: 'status';
  status: string;
  retryAfterMs?: number;
  sessionId?: string;
  requestId?: string;
  reason?: string;
}

/** The engine's answer to a QUERY/STATE_CHECK. Only `flowState` and `variables` are guaranteed. */
export interface StateAnswer {
  kind: 'state';
  flowState: string;
  variables: Record<string, unknown>;
  dialogState?: string;
  engineState?: string;
  historyLength?: number;
  nluContext?: Record<string, unknown> | null;
  sessionId?: string;
  requestId?: string;
}

export type EngineAnswer = StatusAnswer | StateAnswer;

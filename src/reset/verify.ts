/**
 * The verdict of one state check against a plan (pure). Verified means `flowState` is `RESET` and no
 * variables remain, and, where the engine reports them, the other cleared layers are clear too.
 * `pending` means the flow is still `ACTIVE` (a blocking action finishing): poll again.
 */
import type { ErrorCode } from '../errors.js';
import { STATE_RESET_VALUES, type StateAnswer } from '../protocol/index.js';
import type { Layer, ResetPlan } from '../model/plan.js';

/** `failed` names the layer the check found not cleared. */
export type Verdict =
  | { kind: 'verified' }
  | { kind: 'pending' }
  | { kind: 'failed'; code: ErrorCode; message: string; layer: Layer };

export function verdictFor(state: StateAnswer, plan: ResetPlan): Verdict {
  // A handful of layers: a lookup in the plan's own list, no Set made per state check.
  const clears = plan.cleared;
  if (clears.includes('flow') && state.flowState !== STATE_RESET_VALUES.flowState) {
    if (state.flowState === 'ACTIVE') return { kind: 'pending' };
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_STATE',
      message: `flowState is ${JSON.stringify(state.flowState.slice(0, 32))}, expected "RESET"`,
      layer: 'flow',
    };
  }
  if (clears.includes('variables') && Object.keys(state.variables).length > 0) {
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_VARIABLES',
      message: `${Object.keys(state.variables).length} variable(s) remain after the reset`,
      layer: 'variables',
    };
  }
  if (clears.includes('history') && state.historyLength !== undefined && state.historyLength > 0) {
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_HISTORY',
      message: `${state.historyLength} history turn(s) remain`,
      layer: 'history',
    };
  }
  if (
    clears.includes('nlu') &&
    state.nluContext !== undefined &&
    state.nluContext !== null &&
    Object.keys(state.nluContext).length > 0
  ) {
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_NLU',
      message: 'NLU context remains after the reset',
      layer: 'nlu',
    };
  }
  if (
    clears.includes('dialog') &&
    state.dialogState !== undefined &&
    state.dialogState !== STATE_RESET_VALUES.dialogState
  ) {
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_STATE',
      message: `dialogState is ${JSON.stringify(state.dialogState.slice(0, 32))}`,
      layer: 'dialog',
    };
  }
  if (
    clears.includes('engine') &&
    state.engineState !== undefined &&
    state.engineState !== STATE_RESET_VALUES.engineState
  ) {
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_STATE',
      message: `engineState is ${JSON.stringify(state.engineState.slice(0, 32))}`,
      layer: 'engine',
    };
  }
  return { kind: 'verified' };
}

/**
 * Whether `state` reports every layer `plan` clears: only then can it say that nothing a reset would
 * clear is left (the seed's bare shapes report the flow and the variables alone).
 */
export function reportsEveryLayer(state: StateAnswer, plan: ResetPlan): boolean {
  const reported: Record<string, boolean> = {
    flow: true,
    variables: true,
    dialog: state.dialogState !== undefined,
    engine: state.engineState !== undefined,
    history: state.historyLength !== undefined,
    nlu: state.nluContext !== undefined,
  };
  return plan.cleared.every((layer) => reported[layer] === true);
}

/**
 * What a state check says of a session that has not been seen reset in this run (a resume's check
 * before sending): `reset` (verified), `pending` (the flow is still ACTIVE, but every other layer the
 * plan clears that the engine reports is clear, and at least one is reported: reset, finishing a
 * blocking call), `not-reset` (a layer the plan clears is not clear), or `unknown` (the flow is ACTIVE
 * and the engine reports no other layer the plan clears, so the check cannot tell).
 */
export type PriorState = 'reset' | 'pending' | 'not-reset' | 'unknown';

export function priorStateOf(state: StateAnswer, plan: ResetPlan): PriorState {
  const verdict = verdictFor(state, plan);
  if (verdict.kind === 'verified') return 'reset';
  if (verdict.kind === 'failed') return 'not-reset';
  const clears = plan.cleared;
  const seen: boolean[] = [];
  if (clears.includes('variables')) seen.push(Object.keys(state.variables).length === 0);
  if (clears.includes('history') && state.historyLength !== undefined) seen.push(state.historyLength === 0);
  if (clears.includes('nlu') && state.nluContext !== undefined)
    seen.push(state.nluContext === null || Object.keys(state.nluContext).length === 0);
  if (clears.includes('dialog') && state.dialogState !== undefined)
    seen.push(state.dialogState === STATE_RESET_VALUES.dialogState);
  if (clears.includes('engine') && state.engineState !== undefined)
    seen.push(state.engineState === STATE_RESET_VALUES.engineState);
  if (seen.length === 0) return 'unknown';
  return seen.every(Boolean) ? 'pending' : 'not-reset';
}

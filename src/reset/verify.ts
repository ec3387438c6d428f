/**
 * The verdict of one state check against a plan (pure). Verified means `flowState` is `RESET` and no
 * variables remain, and, where the engine reports them, the other cleared layers are clear too.
 * `pending` means the flow is still `ACTIVE` (a blocking action finishing): poll again.
 */
import type { ErrorCode } from '../errors.js';
import { STATE_RESET_VALUES, type StateAnswer } from '../protocol/index.js';
import type { ResetPlan } from './plan.js';

export type Verdict =
  { kind: 'verified' } | { kind: 'pending' } | { kind: 'failed'; code: ErrorCode; message: string };

export function verdictFor(state: StateAnswer, plan: ResetPlan): Verdict {
  // A handful of layers: a lookup in the plan's own list, no Set made per state check.
  const clears = plan.cleared;
  if (clears.includes('flow') && state.flowState !== STATE_RESET_VALUES.flowState) {
    if (state.flowState === 'ACTIVE') return { kind: 'pending' };
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_STATE',
      message: `flowState is ${JSON.stringify(state.flowState.slice(0, 32))}, expected "RESET"`,
    };
  }
  if (clears.includes('variables') && Object.keys(state.variables).length > 0) {
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_VARIABLES',
      message: `${Object.keys(state.variables).length} variable(s) remain after the reset`,
    };
  }
  if (clears.includes('history') && state.historyLength !== undefined && state.historyLength > 0) {
    return {
      kind: 'failed',
      code: 'CR_ERR_RESET_VERIFY_HISTORY',
      message: `${state.historyLength} history turn(s) remain`,
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
    };
  }
  return { kind: 'verified' };
}

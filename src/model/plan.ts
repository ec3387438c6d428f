/**
 * The plan: a pure function from the user's options (and what a transport can clear) to what a reset
 * directive will clear. `--dry-run` prints it; the directive is compiled from it.
 */
import { type ContextWipeDirective, STATE_RESET_VALUES, type StateClearMatrix } from '../protocol/index.js';

export const LAYERS = ['flow', 'dialog', 'engine', 'variables', 'history', 'nlu'] as const;
export type Layer = (typeof LAYERS)[number];

export interface PlanOptions {
  /** Keep the conversation history. @default false */
  keepHistory?: boolean;
  /** Keep the session variables. @default false */
  keepVariables?: boolean;
  /** Keep the NLU context. @default false */
  keepNlu?: boolean;
  /** Reset the flow position only: nothing else is cleared. @default false */
  flowOnly?: boolean;
}

export interface ResetPlan {
  stateClearMatrix: StateClearMatrix;
  contextWipeDirective: ContextWipeDirective;
  /** Layers the reset clears, in LAYERS order. */
  cleared: Layer[];
  /** Layers the user asked to keep. */
  kept: Layer[];
  /** Layers the user wanted cleared but the transport cannot clear. */
  notClearable: Layer[];
}

export function planReset(
  options: PlanOptions = {},
  capabilities: ReadonlySet<Layer> = new Set(LAYERS),
): ResetPlan {
  const wanted = new Set<Layer>(
    options.flowOnly === true
      ? ['flow']
      : LAYERS.filter(
          (layer) =>
            !(layer === 'history' && options.keepHistory === true) &&
            !(layer === 'variables' && options.keepVariables === true) &&
            !(layer === 'nlu' && options.keepNlu === true),
        ),
  );
  const clears = (layer: Layer): boolean => wanted.has(layer) && capabilities.has(layer);
  const stateClearMatrix: StateClearMatrix = {};
  if (clears('flow')) stateClearMatrix.flowState = STATE_RESET_VALUES.flowState;
  if (clears('dialog')) stateClearMatrix.dialogState = STATE_RESET_VALUES.dialogState;
  if (clears('engine')) stateClearMatrix.engineState = STATE_RESET_VALUES.engineState;
  return {
    stateClearMatrix,
    contextWipeDirective: {
      clearVariables: clears('variables'),
      clearHistory: clears('history'),
      clearNLUContext: clears('nlu'),
    },
    cleared: LAYERS.filter(clears),
    kept: LAYERS.filter((layer) => !wanted.has(layer)),
    notClearable: LAYERS.filter((layer) => wanted.has(layer) && !capabilities.has(layer)),
  };
}

/**
 * How a job's sends are spaced: the adaptive rate by default (the spec's rate its ceiling), or a fixed
 * token bucket. REST keeps Cognigy's SaaS ceiling unless the spec's rate says otherwise. Jobs on one
 * engine origin and tenant share one adaptive controller.
 */
import { AdaptiveRate } from '../reset/flow-control/adaptive-rate.js';
import { FixedRate, type SendPacer } from '../reset/flow-control/pacer.js';
import { sharedAdaptiveRate } from '../reset/flow-control/shared.js';
import { DEFAULT_REST_RATE_PER_SEC } from '../transports/cognigy-rest/client.js';
import type { JobSpec } from './types.js';

/** The pacer of a job (the spec is valid: a fixed rate has its rate). */
export function pacerFor(spec: Pick<JobSpec, 'flowControl' | 'transport' | 'url' | 'tenant'>): SendPacer {
  const { rate, fixed } = spec.flowControl;
  if (fixed && rate !== undefined) return new FixedRate(rate);
  const ceiling = rate ?? (spec.transport === 'cognigy-rest' ? DEFAULT_REST_RATE_PER_SEC : undefined);
  let origin: string;
  try {
    origin = new URL(spec.url).origin;
  } catch {
    origin = 'invalid';
  }
  return sharedAdaptiveRate(
    `${spec.transport}\u0000${origin}\u0000${spec.tenant}`,
    ceiling === undefined ? {} : { ceiling },
  );
}

/** What the `--json` summary says of the pacer: how it ended, and how many sends were refused. */
export function paceSummary(pacer: SendPacer | undefined): Record<string, unknown> {
  if (pacer === undefined) return { mode: 'none' };
  const rate = Math.round(pacer.rate() * 10) / 10;
  if (pacer instanceof AdaptiveRate) {
    return {
      mode: 'adaptive',
      rate,
      ceiling: pacer.ceiling === Infinity ? null : pacer.ceiling,
      refused: pacer.refusals,
      cuts: pacer.cuts,
    };
  }
  return { mode: 'fixed', rate, refused: pacer.refusals };
}

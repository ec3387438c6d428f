/**
 * The flags that choose how sends are spaced: the adaptive rate by default (`--rate` its ceiling),
 * or a fixed token bucket with `--fixed-rate`. REST keeps Cognigy's SaaS ceiling unless `--rate` says
 * otherwise.
 */
import { CognigyResetError } from '../errors.js';
import { AdaptiveRate } from '../reset/flow-control/adaptive-rate.js';
import { FixedRate, type SendPacer } from '../reset/flow-control/pacer.js';
import { sharedAdaptiveRate } from '../reset/flow-control/shared.js';
import { DEFAULT_REST_RATE_PER_SEC } from '../transports/cognigy-rest/client.js';

export interface PaceFlags {
  rate?: number | undefined;
  fixedRate: boolean;
  transport: string;
}

export function pacerFor(flags: PaceFlags, url: string, tenant: string): SendPacer {
  if (flags.fixedRate) {
    if (flags.rate === undefined) {
      throw new CognigyResetError('CR_ERR_OPT_MISSING', '--fixed-rate needs --rate', { field: '--rate' });
    }
    return new FixedRate(flags.rate);
  }
  const ceiling = flags.rate ?? (flags.transport === 'cognigy-rest' ? DEFAULT_REST_RATE_PER_SEC : undefined);
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    origin = 'invalid';
  }
  return sharedAdaptiveRate(
    `${flags.transport}\u0000${origin}\u0000${tenant}`,
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
  return { mode: 'fixed', rate };
}

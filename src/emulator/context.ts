/** What every door of the emulator shares: one store, one token registry, one fault set, one set of stats. */
import { TokenBucket } from '../util/token-bucket.js';
import type { EmulatorFaults } from './faults.js';
import { createRandom } from './prng.js';
import type { EmulatorStats } from './stats.js';
import type { SessionStore } from './store.js';
import type { TokenRegistry } from './tokens.js';

export interface EmulatorContext {
  readonly store: SessionStore;
  readonly tokens: TokenRegistry;
  readonly stats: EmulatorStats;
  readonly strict: boolean;
  faults: EmulatorFaults;
  random: () => number;
  /** Rate limiters by name and tenant, rebuilt when the fault set changes. */
  limiters: Map<string, TokenBucket>;
  /** Called after the fault set changed (the runtime door answers what it held). */
  onFaults?: (() => void) | undefined;
}

export function applyFaults(ctx: EmulatorContext, faults: EmulatorFaults): void {
  const reseed = faults.seed !== ctx.faults.seed;
  ctx.faults = faults;
  ctx.limiters.clear();
  if (reseed) ctx.random = createRandom(faults.seed);
  ctx.store.seed({ blockingShare: faults.blockingShare, blockingMs: faults.blockingMs, seed: faults.seed });
  ctx.onFaults?.();
}

/** Takes one token from the named per-tenant limiter; returns 0 or the ms to wait. Rate 0 = unlimited. */
export function rateLimit(ctx: EmulatorContext, name: string, tenant: string, ratePerSec: number): number {
  if (ratePerSec <= 0) return 0;
  const key = `${name}\u0000${tenant}`;
  let bucket = ctx.limiters.get(key);
  if (bucket === undefined) {
    bucket = new TokenBucket(ratePerSec);
    ctx.limiters.set(key, bucket);
  }
  return bucket.tryTake();
}

/**
 * A job's in-flight limit: an adaptive depth by default, the spec's concurrency its ceiling and its
 * start (a user who names a depth gets it at once, and less only when latency says so). Without a
 * `pipeline.connections`, a runtime-ws pool follows the limit: one connection per 64 resets in flight,
 * up to 8.
 */
import { AdaptiveDepth } from '../reset/flow-control/adaptive-depth.js';
import { DepthLimiter } from '../reset/flow-control/depth-limiter.js';
import type { JobSpec } from './types.js';

/** Resets in flight per connection, when the pool follows the limit. */
export const PER_CONNECTION = 64;
/** The most connections a pool that follows the limit opens. */
export const MAX_FOLLOWING_CONNECTIONS = 8;

export function depthFor(spec: Pick<JobSpec, 'pipeline' | 'dryRun'>): DepthLimiter {
  const given = spec.pipeline.concurrency;
  // A dry run sends nothing, so it has no latency to learn from; a fixed depth is what was asked.
  if (spec.dryRun || spec.pipeline.fixedConcurrency === true) return new DepthLimiter(given ?? 16);
  return new DepthLimiter(
    new AdaptiveDepth(given === undefined ? {} : { ceiling: given, initialLimit: given }),
  );
}

/** How a runtime-ws pool sizes itself: undefined when the spec names its connections. */
export function poolFor(
  spec: Pick<JobSpec, 'pipeline'>,
  depth: DepthLimiter,
): { max: number; inUse: () => number } | undefined {
  if (spec.pipeline.connections !== undefined) return undefined;
  const connections = (limit: number): number =>
    Math.max(1, Math.min(MAX_FOLLOWING_CONNECTIONS, Math.ceil(limit / PER_CONNECTION)));
  return { max: connections(depth.ceiling), inUse: () => connections(depth.limit) };
}

/** What the `--json` summary says of the in-flight limit: where it ended, and how often it was cut. */
export function depthSummary(depth: DepthLimiter): Record<string, unknown> {
  const control = depth.control;
  if (control === undefined) return { mode: 'fixed', limit: depth.limit };
  const ms = (value: number): number | null =>
    Number.isFinite(value) ? Math.round(value * 100) / 100 : null;
  return {
    mode: 'adaptive',
    limit: control.limit,
    ceiling: control.ceiling,
    floorMs: ms(control.floorMs),
    targetMs: ms(control.targetMs),
    cuts: control.cuts,
  };
}

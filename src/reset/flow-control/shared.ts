/**
 * One adaptive rate per engine and tenant in a process: every job that talks to the same engine and
 * tenant draws on the same budget, so two jobs do not each probe the cap and double the refusals.
 */
import { AdaptiveRate, type AdaptiveRateOptions } from './adaptive-rate.js';

const shared = new Map<string, AdaptiveRate>();

/** `key` names the engine and tenant (say, the transport, the URL's origin and the tenant id). */
export function sharedAdaptiveRate(key: string, options: AdaptiveRateOptions = {}): AdaptiveRate {
  const name = `${key}\u0000${options.ceiling ?? Infinity}`;
  let pacer = shared.get(name);
  if (pacer === undefined) {
    pacer = new AdaptiveRate(options);
    shared.set(name, pacer);
  }
  return pacer;
}

const ids = new WeakMap<object, string>();
let nextId = 0;

/**
 * A name of a pacer, the same for every job that draws on it (`fc-1`, `fc-2`, …, in this process): jobs
 * whose pacers have one name share one budget.
 */
export function controllerId(pacer: object): string {
  let id = ids.get(pacer);
  if (id === undefined) {
    id = `fc-${++nextId}`;
    ids.set(pacer, id);
  }
  return id;
}

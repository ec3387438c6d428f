/**
 * What a context reset must return: the Flow's default context. Nothing public reads a Flow's default by
 * its reference id with the rights a session reset needs, so the transport learns it: the first context
 * reset of a Flow in a run defines that Flow's default, and every later reset of the same Flow is verified
 * when its answer equals it, key for key and value for value. The first one cannot be checked against
 * anything, so its variables are reported as cleared but not verified. A caller who knows the default's
 * keys says so (`defaultContextKeys`): then every answer, the first included, is verified when it holds no
 * other key. Messages name keys, never values: a context holds personal data.
 */
import { CognigyResetError } from '../../errors.js';
import { canonicalJson } from '../../util/canonical-json.js';

export type ContextVerdict = 'verified' | 'learned';

export class FlowDefaults {
  readonly #keys: ReadonlySet<string> | undefined;
  readonly #learned = new Map<string, Record<string, unknown>>();

  constructor(defaultContextKeys?: readonly string[]) {
    this.#keys = defaultContextKeys === undefined ? undefined : new Set(defaultContextKeys);
  }

  /**
   * Judges the context a reset of a session of this Flow returned; throws when it is not the default. The
   * entrypoint is part of the Flow's identity: a snapshot may hold another version of the Flow.
   */
  judge(flowReferenceId: string, entrypoint: string, context: Record<string, unknown>): ContextVerdict {
    if (this.#keys !== undefined) {
      const extra = Object.keys(context).filter((key) => !this.#keys!.has(key));
      if (extra.length > 0) {
        throw new CognigyResetError(
          'CR_ERR_RESET_VERIFY_VARIABLES',
          `the context still holds ${extra.length} key(s) beyond the Flow's default: ${extra.slice(0, 5).join(', ')}`,
        );
      }
      return 'verified';
    }
    const flow = `${entrypoint}\u0000${flowReferenceId}`;
    const known = this.#learned.get(flow);
    if (known === undefined) {
      this.#learned.set(flow, structuredClone(context));
      return 'learned';
    }
    const differing = differingKeys(known, context);
    if (differing.length > 0) {
      throw new CognigyResetError(
        'CR_ERR_RESET_VERIFY_VARIABLES',
        `the context after the reset differs in ${differing.length} key(s) from the Flow's default ` +
          `(what the first reset of Flow ${flowReferenceId} in this run returned): ${differing.slice(0, 5).join(', ')}`,
      );
    }
    return 'verified';
  }
}

/** Keys present in one context only, or with different values (compared as canonical JSON). */
function differingKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter(
    (key) =>
      !(Object.hasOwn(a, key) && Object.hasOwn(b, key) && canonicalJson(a[key]) === canonicalJson(b[key])),
  );
}

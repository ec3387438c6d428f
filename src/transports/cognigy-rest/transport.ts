/**
 * The Cognigy REST transport: a reset is a context reset (variables back to the Flow's default) and, when
 * the plan clears NLU, a state reset. It cannot clear the flow position, dialog or engine state, or the
 * history: every outcome says so. Verification reads the context the reset returns: it must be the Flow's
 * default, learned or stated as `flow-defaults.ts` says. The NLU state reset answers `{}`, so it is
 * cleared but cannot be read back (`notVerified`).
 */
import type { Layer, ResetPlan } from '../../model/plan.js';
import type { SessionTarget, TargetField } from '../../model/target.js';
import { TargetStyleTransport, type TargetResetOptions } from '../target-style.js';
import type { ReadBack } from '../transport.js';
import { CognigyRestClient, type CognigyRestOptions } from './client.js';
import { FlowDefaults } from './flow-defaults.js';

export interface RestTransportOptions extends CognigyRestOptions {
  /**
   * Keys the Flow's default context holds; anything else after a reset fails verification. Unset, the
   * default is learned from the first reset of each Flow in the run. @default undefined
   */
  defaultContextKeys?: readonly string[] | undefined;
}

export class CognigyRestTransport extends TargetStyleTransport {
  readonly name = 'cognigy-rest';
  readonly capabilities: ReadonlySet<Layer> = new Set<Layer>(['variables', 'nlu']);
  readonly client: CognigyRestClient;
  readonly #defaults: FlowDefaults;

  constructor(options: RestTransportOptions) {
    super();
    this.client = new CognigyRestClient(options);
    this.#defaults = new FlowDefaults(options.defaultContextKeys);
  }

  requiredFields(plan: ResetPlan): TargetField[] {
    return plan.cleared.includes('variables') ? ['userId', 'flowReferenceId', 'entrypoint'] : ['userId'];
  }

  #bodies(target: SessionTarget, plan: ResetPlan): { path: string; body: Record<string, unknown> }[] {
    const id = encodeURIComponent(target.sessionId);
    const out: { path: string; body: Record<string, unknown> }[] = [];
    if (plan.cleared.includes('variables')) {
      out.push({
        path: `/new/v2.0/sessions/${id}/context/reset`,
        body: {
          userId: target.userId,
          flowReferenceId: target.flowReferenceId,
          entrypoint: target.entrypoint,
        },
      });
    }
    if (plan.cleared.includes('nlu')) {
      out.push({ path: `/new/v2.0/sessions/${id}/state/reset`, body: { userId: target.userId } });
    }
    return out;
  }

  describe(target: SessionTarget, plan: ResetPlan): unknown {
    return {
      transport: this.name,
      requests: this.#bodies(target, plan).map((r) => ({ method: 'POST', ...r })),
    };
  }

  async resetTarget(target: SessionTarget, plan: ResetPlan, options: TargetResetOptions): Promise<ReadBack> {
    const rest = {
      sessionId: target.sessionId,
      userId: target.userId ?? '',
      flowReferenceId: target.flowReferenceId,
      entrypoint: target.entrypoint,
    };
    const notVerified: Layer[] = [];
    let verified = false;
    if (plan.cleared.includes('variables')) {
      const context = await this.client.resetContext(rest, options.signal, options.beforeRetry);
      // The first reset of a Flow defines its default (see flow-defaults.ts): it cannot verify itself.
      if (
        options.verify &&
        this.#defaults.judge(rest.flowReferenceId!, rest.entrypoint!, context) === 'verified'
      )
        verified = true;
      else notVerified.push('variables');
    }
    if (plan.cleared.includes('nlu')) {
      await this.client.resetState(rest, options.signal, options.beforeRetry);
      notVerified.push('nlu');
    }
    // Only the context can be read back; a plan that clears nothing here verifies nothing.
    return { verified, notVerified };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A run whose input spans several ledger jobs (a service replica running a job's chunks one after another,
 * each chunk a ledger job of its own): each ledger is opened, and its lease claimed, the first time an
 * input index of it is looked up; every open one is heartbeated while the run lasts; `settle` finishes and
 * releases one whose sessions all have an outcome, and the run's end settles the rest. A ledger whose
 * lease another run holds refuses the lookup (`CR_ERR_STATE_JOB_RUNNING`), which ends the run as a failed
 * lookup does.
 */
import type { Logger } from 'pino';
import type { LedgerState } from '../reset/bulk.js';
import type { JobClaimHandle, Store } from '../store/index.js';

export interface LedgerSetOptions {
  db: Store;
  /** The ledger job input item `index` is recorded under. */
  ledgerOf(index: number): string;
  settings: Record<string, unknown>;
  leaseMs: number;
  log: Logger;
}

export class LedgerSet {
  readonly #open = new Map<string, Promise<JobClaimHandle>>();
  readonly #options: LedgerSetOptions;

  constructor(options: LedgerSetOptions) {
    this.#options = options;
  }

  idOf(index: number): string {
    return this.#options.ledgerOf(index);
  }

  async lookup(targets: readonly { sessionId: string; index: number }[]): Promise<LedgerState[]> {
    const groups = new Map<string, number[]>();
    targets.forEach((target, at) => {
      const id = this.idOf(target.index);
      let group = groups.get(id);
      if (group === undefined) groups.set(id, (group = []));
      group.push(at);
    });
    const states = new Array<LedgerState>(targets.length);
    for (const [id, places] of groups) {
      const handle = await this.#handle(id);
      const verdicts = await handle.lookup(places.map((at) => targets[at]!));
      places.forEach((at, i) => (states[at] = verdicts[i]!));
    }
    return states;
  }

  async reserve(index: number): Promise<void> {
    await (await this.#handle(this.idOf(index))).reserve(index);
  }

  /** Extends every open ledger's lease; fails `CR_ERR_STATE_JOB_LOST` when another run took one over. */
  async heartbeat(): Promise<void> {
    await Promise.all([...this.#open.values()].map(async (opening) => (await opening).heartbeat()));
  }

  /** Finishes and releases one ledger (every session of it has an outcome, or it is left to another run). */
  async settle(id: string, complete: boolean): Promise<void> {
    const opening = this.#open.get(id);
    if (opening === undefined) return;
    this.#open.delete(id);
    // An open that was refused claimed nothing.
    const handle = await opening.catch(() => undefined);
    if (handle === undefined) return;
    try {
      await handle.finish(complete);
    } finally {
      await handle.release();
    }
  }

  /** The run ends: every ledger still open is finished (when `complete`) and released. */
  async finish(complete: boolean): Promise<void> {
    for (const id of [...this.#open.keys()]) await this.settle(id, complete);
  }

  async release(): Promise<void> {
    await this.finish(false);
  }

  #handle(id: string): Promise<JobClaimHandle> {
    let opening = this.#open.get(id);
    if (opening === undefined) {
      const { db, settings, leaseMs, log } = this.#options;
      opening = db.openJob({ jobId: id, settings, leaseMs }).then((handle) => {
        if (handle.takenOver !== undefined) {
          const { host, pid, since } = handle.takenOver;
          log.warn({ ledger: id, heldBy: { host, pid, since } }, 'ledger taken over from a run that stopped');
        }
        return handle;
      });
      // A refused open is not kept: the run ends on it, and a later run opens the ledger anew.
      opening.catch(() => this.#open.delete(id));
      this.#open.set(id, opening);
    }
    return opening;
  }
}

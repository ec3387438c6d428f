/**
 * Which sessions a run has already taken from its input, so a session listed twice is reset once
 * (the second listing is reported as skipped, CR_ERR_RESET_DUPLICATE). The bulk runner asks before it
 * does anything else with a target.
 */
export interface SeenIds {
  /** Records `sessionId` at input item `index`; returns the index it was first seen at when it was. */
  firstIndex(sessionId: string, index: number): number | undefined;
  close?(): void;
}

/**
 * In memory: fine for a library call with a list it already holds. A CLI run over a stream of a million
 * ids uses the state layer's file-backed set instead (`SeenIdsFile`), whose memory stays flat.
 */
export class SeenIdsInMemory implements SeenIds {
  readonly #first = new Map<string, number>();

  firstIndex(sessionId: string, index: number): number | undefined {
    const first = this.#first.get(sessionId);
    if (first === undefined) this.#first.set(sessionId, index);
    return first;
  }
}

/**
 * A bounded queue between a job and the one reader of its events: `push` returns a promise only while the
 * queue is full, so a slow reader holds back new sessions instead of growing memory. Before a reader
 * attaches, and after it leaves, nothing is kept.
 */
export class EventQueue<T> {
  readonly #capacity: number;
  readonly #items: T[] = [];
  #attached = false;
  #ended = false;
  #wakeReader: (() => void) | undefined;
  readonly #wakeWriters: (() => void)[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Queues an event; resolves when there is room again if the queue is full. */
  push(item: T): Promise<void> | undefined {
    if (!this.#attached || this.#ended) return undefined;
    this.#items.push(item);
    this.#wakeReader?.();
    if (this.#items.length < this.#capacity) return undefined;
    return new Promise<void>((resolve) => this.#wakeWriters.push(resolve));
  }

  /** No more events: the reader finishes with what is queued. */
  end(): void {
    this.#ended = true;
    this.#wakeReader?.();
  }

  #release(): void {
    for (const wake of this.#wakeWriters.splice(0)) wake();
  }

  /**
   * The one reader, attached from this call on (a second call fails). Leaving the loop early detaches it
   * and frees the writers.
   */
  read(): AsyncGenerator<T> {
    if (this.#attached) throw new Error('a job has one event reader');
    this.#attached = true;
    return this.#loop();
  }

  async *#loop(): AsyncGenerator<T> {
    try {
      for (;;) {
        const item = this.#items.shift();
        if (item !== undefined) {
          if (this.#items.length < this.#capacity) this.#wakeWriters.shift()?.();
          yield item;
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => (this.#wakeReader = resolve));
        this.#wakeReader = undefined;
      }
    } finally {
      this.#attached = false;
      this.#items.length = 0;
      this.#release();
    }
  }
}

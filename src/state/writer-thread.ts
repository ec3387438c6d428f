/** The main thread's handle on the writer thread (`writer-worker.ts`): post a batch, await its commit. */
import { Worker } from 'node:worker_threads';
import { CognigyResetError } from '../errors.js';

export class WriterThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  #next = 0;
  readonly #inflight = new Set<Promise<void>>();
  #failed: Error | undefined;
  readonly #exited: Promise<void>;

  constructor(path: string) {
    this.#worker = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: { path } });
    this.#worker.on('message', (message: { id: number; ok: boolean; message?: string }) => {
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.ok) waiter?.resolve();
      else
        waiter?.reject(
          new CognigyResetError(
            'CR_ERR_STATE_WRITE',
            `state file write failed: ${message.message ?? 'error'}`,
          ),
        );
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', () => {
        this.#fail(new CognigyResetError('CR_ERR_STATE_WRITE', 'the state file writer stopped'));
        resolve();
      });
    });
    this.#worker.on('error', (err) =>
      this.#fail(
        new CognigyResetError('CR_ERR_STATE_WRITE', `state file writer failed: ${err.message}`, {
          cause: err,
        }),
      ),
    );
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    for (const waiter of this.#pending.values()) waiter.reject(err);
    this.#pending.clear();
  }

  /** Resolves once the batch is committed. */
  write(kind: 'job-sessions', values: unknown[]): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const id = this.#next++;
    const written = new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, kind, values });
    });
    const settled = written.then(
      () => undefined,
      () => undefined,
    );
    this.#inflight.add(settled);
    void settled.then(() => this.#inflight.delete(settled));
    return written;
  }

  /** Waits for every batch posted so far, then stops the thread. */
  async close(): Promise<void> {
    await Promise.all(this.#inflight);
    this.#worker.postMessage({ close: true });
    await this.#exited;
  }
}

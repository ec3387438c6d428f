/**
 * The PostgreSQL store's committers (`batching-writer.ts`): each batch is committed in one transaction
 * (`pg-batch.ts`), on a writer thread with its own connection (`pg-writer-worker.ts`) or on a connection of
 * this thread's pool.
 */
import type { Pool, PoolClient } from 'pg';
import type { BatchMessage } from '../batch.js';
import { type Committer, ThreadCommitter } from '../batching-writer.js';
import { PgBatchCommitter } from './pg-batch.js';
import { pgStoreError } from './errors.js';

/** Commits on a connection of this thread's pool, one batch after the other. */
export class LocalCommitter implements Committer {
  readonly #shown: string;
  readonly #ready: Promise<void>;
  #client: PoolClient | undefined;
  #batches: PgBatchCommitter | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(pool: Pool, shown: string) {
    this.#shown = shown;
    this.#ready = (async () => {
      try {
        const client = await pool.connect();
        client.on('error', () => undefined);
        this.#client = client;
        this.#batches = new PgBatchCommitter(client);
        await this.#batches.probe();
      } catch (err) {
        throw pgStoreError(shown, 'preparing to write to', err, 'CR_ERR_STATE_OPEN');
      }
    })();
    this.#ready.catch(() => undefined);
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  commit(batch: BatchMessage): Promise<Error | undefined> {
    const run = async (): Promise<Error | undefined> => {
      const batches = this.#batches!;
      try {
        await batches.commit(batch);
      } catch (err) {
        throw pgStoreError(this.#shown, 'writing to', err, 'CR_ERR_STATE_WRITE');
      }
      try {
        await batches.remove(batch.delivered);
        return undefined;
      } catch (err) {
        // The events stay in the outbox and go out again, where the tracker drops them by key.
        return pgStoreError(this.#shown, 'deleting delivered events from', err, 'CR_ERR_STATE_WRITE');
      }
    };
    const done = this.#chain.then(run);
    this.#chain = done.catch(() => undefined);
    return done;
  }

  async close(): Promise<void> {
    await this.#chain;
    await this.#ready.catch(() => undefined);
    // A connection whose last batch failed may be mid-transaction: it is not handed to anyone else.
    this.#client?.release(true);
    this.#client = undefined;
  }
}

/** Commits on a writer thread with a connection of its own. */
export function pgThreadCommitter(location: string, shown: string): Committer {
  return new ThreadCommitter(
    new URL('./pg-writer-worker.js', import.meta.url),
    { location, shown },
    `the writer of the PostgreSQL store ${shown} stopped`,
  );
}

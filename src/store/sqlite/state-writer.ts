/**
 * The state file's committers (`batching-writer.ts`): what a bulk run must make durable — job rows, audit
 * records, outbox events — is committed one batch per transaction, on a writer thread (`writer-worker.ts`)
 * or in this thread for small library uses.
 */
import { CognigyResetError } from '../../errors.js';
import { BatchingWriter, type Committer, ThreadCommitter } from '../batching-writer.js';
import { type BatchMessage, batchWriter, notWritable, probeWritable } from './batch-sql.js';
import type { StateDb } from './state-file.js';

/** Commits in this thread, on `db`, at once: a batch is durable when `flush()` returns. */
class LocalCommitter implements Committer {
  readonly #ready: Promise<void> = Promise.resolve();
  readonly #write: (batch: BatchMessage) => string | undefined;

  constructor(db: StateDb, path: string) {
    try {
      probeWritable(db);
    } catch (err) {
      this.#ready = Promise.reject(notWritable(path, err));
      this.#ready.catch(() => undefined);
    }
    this.#write = batchWriter(db);
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  commit(batch: BatchMessage): Promise<Error | undefined> {
    try {
      const deliveredError = this.#write(batch);
      return Promise.resolve(
        deliveredError === undefined
          ? undefined
          : new CognigyResetError('CR_ERR_STATE_WRITE', deliveredError),
      );
    } catch (err) {
      return Promise.reject(
        new CognigyResetError('CR_ERR_STATE_WRITE', `state file write failed: ${(err as Error).message}`, {
          cause: err,
        }),
      );
    }
  }

  async close(): Promise<void> {}
}

/** What `BatchingWriter` calls the state file's writer in an error. */
export const STATE_WRITER = 'the state file writer';

/** A writer committing on `db` in this thread, for small library uses and tests. */
export function localStateWriter(db: StateDb, path: string): BatchingWriter {
  return new BatchingWriter(new LocalCommitter(db, path), STATE_WRITER);
}

/** `thread: true` commits on a worker thread that opens `path`; otherwise on `db`, in this thread. */
export function stateCommitter(options: { db: StateDb; path: string; thread: boolean }): Committer {
  return options.thread
    ? new ThreadCommitter(
        new URL('./writer-worker.js', import.meta.url),
        { path: options.path },
        'the state file writer stopped',
      )
    : new LocalCommitter(options.db, options.path);
}

/** Throws CR_ERR_STATE_OPEN unless `db` can write the state file at `path`. */
export function checkWritable(db: StateDb, path: string): void {
  try {
    probeWritable(db);
  } catch (err) {
    throw notWritable(path, err);
  }
}

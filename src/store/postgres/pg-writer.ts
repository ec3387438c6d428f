/**
 * The PostgreSQL store's `OutcomeWriter`: items are gathered into batches (every few milliseconds, or 512
 * items) and each batch is committed in one transaction (`pg-batch.ts`), on a writer thread with its own
 * connection (`pg-writer-worker.ts`) or on a connection of this thread's pool. `append()` resolves once
 * its batch committed: an outcome is reported only then.
 */
import type { Pool, PoolClient } from 'pg';
import { Worker } from 'node:worker_threads';
import { CognigyResetError, isErrorCode } from '../../errors.js';
import { type BatchMessage, pushOutcome } from '../batch.js';
import type { AppendItem, OutcomeWriter } from '../port.js';
import { PgBatchCommitter } from './pg-batch.js';
import { pgStoreError } from './errors.js';

const FLUSH_MS = 4;
const FLUSH_ITEMS = 512;

/** Commits batches, in the order given. */
export interface Committer {
  /** Resolves once it holds a connection that can write. */
  ready(): Promise<void>;
  /** Commits the batch, then deletes its delivered events: resolves with why those were not deleted. */
  commit(batch: BatchMessage): Promise<string | undefined>;
  close(): Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

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

  commit(batch: BatchMessage): Promise<string | undefined> {
    const run = async (): Promise<string | undefined> => {
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
        return pgStoreError(this.#shown, 'deleting delivered events from', err, 'CR_ERR_STATE_WRITE').message;
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

type Reply =
  | { ready: true }
  | { ready: false; code: string; message: string }
  | { id: number; ok: true; deliveredError?: string }
  | { id: number; ok: false; code: string; message: string };

const coded = (code: string, message: string): CognigyResetError =>
  new CognigyResetError(isErrorCode(code) ? code : 'CR_ERR_STATE_WRITE', message);

/** Commits on a writer thread with a connection of its own: hashing and encoding stay off this thread. */
export class ThreadCommitter implements Committer {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(e: string | undefined): void; reject(err: unknown): void }>();
  readonly #ready: Promise<void>;
  readonly #exited: Promise<void>;
  #next = 0;
  #failed: Error | undefined;

  constructor(location: string, shown: string) {
    const worker = new Worker(new URL('./pg-writer-worker.js', import.meta.url), {
      workerData: { location, shown },
      // The thread holds a batch or two at a time: a small young generation keeps its memory small too.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 },
    });
    this.#worker = worker;
    let ready!: Waiter;
    this.#ready = new Promise<void>((resolve, reject) => (ready = { resolve, reject }));
    this.#ready.catch(() => undefined);
    worker.on('message', (reply: Reply) => {
      if ('ready' in reply) {
        if (reply.ready) ready.resolve();
        else this.#fail(coded(reply.code, reply.message), ready);
        return;
      }
      const posted = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.ok) posted?.resolve(reply.deliveredError);
      else posted?.reject(coded(reply.code, reply.message));
    });
    const stopped = new CognigyResetError(
      'CR_ERR_STATE_WRITE',
      `the writer of the PostgreSQL store ${shown} stopped`,
    );
    worker.on('error', () => this.#fail(stopped, ready));
    this.#exited = new Promise((resolve) =>
      worker.once('exit', () => {
        this.#fail(stopped, ready);
        resolve();
      }),
    );
  }

  #fail(err: Error, ready: Waiter): void {
    this.#failed ??= err;
    ready.reject(err);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  commit(batch: BatchMessage): Promise<string | undefined> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const id = this.#next++;
    const done = new Promise<string | undefined>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject }),
    );
    this.#worker.postMessage({ id, batch });
    return done;
  }

  async close(): Promise<void> {
    // The thread commits what it was given, in order, before it reads the close.
    this.#worker.postMessage({ close: true });
    await this.#exited;
  }
}

/** Batches appends and hands each batch to a committer. */
export class PgWriter implements OutcomeWriter {
  readonly #committer: Committer;
  readonly #inFlight = new Set<Promise<unknown>>();
  #batch: BatchMessage = { outcomes: [], outbox: [], delivered: [] };
  #waiter: Waiter | undefined;
  #committed: Promise<void> | undefined;
  #acks: Waiter[] = [];
  #items = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(committer: Committer) {
    this.#committer = committer;
  }

  /** A writer whose committer can write: nothing is sent before this resolves. */
  static async open(committer: Committer): Promise<PgWriter> {
    try {
      await committer.ready();
    } catch (err) {
      await committer.close().catch(() => undefined);
      throw err;
    }
    return new PgWriter(committer);
  }

  append(item: AppendItem): Promise<void> {
    if (this.#closed) return Promise.reject(closedWriter());
    if (item.outcome !== undefined && (item.job !== undefined || item.audit !== undefined))
      pushOutcome(this.#batch.outcomes, item.outcome, item.job, item.audit);
    if (item.outbox !== undefined) this.#batch.outbox.push(item.outbox);
    return this.#queued();
  }

  ack(ids: readonly number[]): Promise<void> {
    if (this.#closed) return Promise.reject(closedWriter());
    this.#batch.delivered.push(...ids);
    const acked = new Promise<void>((resolve, reject) => this.#acks.push({ resolve, reject }));
    acked.catch(() => undefined);
    void this.#queued();
    return acked;
  }

  #queued(): Promise<void> {
    let committed = this.#committed;
    if (committed === undefined) {
      committed = new Promise<void>((resolve, reject) => (this.#waiter = { resolve, reject }));
      // A batch nobody awaits must not surface as an unhandled rejection; callers still see it.
      committed.catch(() => undefined);
      this.#committed = committed;
    }
    if (++this.#items >= FLUSH_ITEMS) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    return committed;
  }

  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    const waiter = this.#waiter;
    const acks = this.#acks;
    this.#batch = { outcomes: [], outbox: [], delivered: [] };
    this.#waiter = undefined;
    this.#committed = undefined;
    this.#acks = [];
    this.#items = 0;
    if (waiter === undefined) return;
    const done = this.#committer.commit(batch).then(
      (deliveredError) => {
        waiter.resolve();
        settleAcks(acks, deliveredError);
      },
      (err: unknown) => {
        waiter.reject(err);
        for (const ack of acks) ack.reject(err);
      },
    );
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
  }

  /** Commits what is queued, waits for every batch, and closes the committer. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    await Promise.all(this.#inFlight);
    await this.#committer.close();
  }
}

function closedWriter(): CognigyResetError {
  return new CognigyResetError('CR_ERR_STATE_WRITE', 'the writer of the PostgreSQL store is closed');
}

function settleAcks(acks: Waiter[], deliveredError: string | undefined): void {
  if (deliveredError === undefined) {
    for (const ack of acks) ack.resolve();
    return;
  }
  const err = new CognigyResetError('CR_ERR_STATE_WRITE', deliveredError);
  for (const ack of acks) ack.reject(err);
}

/**
 * Every backend's `OutcomeWriter`: items are gathered into batches (every few milliseconds, or 512 items)
 * and each batch goes to a `Committer`, which commits it in one transaction, on a writer thread of its own
 * (`ThreadCommitter`) or in this thread. `append()` resolves once its batch committed: an outcome is
 * reported only then.
 */
import { Worker } from 'node:worker_threads';
import { CognigyResetError, isErrorCode } from '../errors.js';
import { type BatchMessage, pushOutcome } from './batch.js';
import type { AppendItem, OutcomeWriter } from './port.js';

/**
 * A short wait: outcomes held for their commit die young. A longer wait lets many survive two
 * scavenges into the old generation, which a million-id run pays for in peak RSS (docs/benchmarks.md).
 */
const FLUSH_MS = 4;
const FLUSH_ITEMS = 512;

/** Commits batches, in the order given. */
export interface Committer {
  /** Resolves once it can write; rejects (`CR_ERR_STATE_OPEN`) when it cannot, before anything is sent. */
  ready(): Promise<void>;
  /**
   * Commits the batch, then deletes its delivered events in a transaction of their own: resolves with the
   * error that kept those from being deleted (the batch itself committed), or undefined.
   */
  commit(batch: BatchMessage): Promise<Error | undefined>;
  close(): Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** Batches appends and hands each batch to a committer. */
export class BatchingWriter implements OutcomeWriter {
  readonly #committer: Committer;
  /** What this writer is called in an error: `the state file writer`, say. */
  readonly #name: string;
  readonly #inFlight = new Set<Promise<unknown>>();
  #batch: BatchMessage = { outcomes: [], outbox: [], delivered: [] };
  /** The current batch's promise and how to settle it; undefined while the batch is empty. */
  #committed: Promise<void> | undefined;
  #waiter: Waiter | undefined;
  /** Who waits for the current batch's deletes of delivered outbox events (`ack`). */
  #acks: Waiter[] = [];
  #items = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(committer: Committer, name: string) {
    this.#committer = committer;
    this.#name = name;
  }

  /** A writer whose committer can write: nothing is sent before this resolves. */
  static async open(committer: Committer, name: string): Promise<BatchingWriter> {
    try {
      await committer.ready();
    } catch (err) {
      await committer.close().catch(() => undefined);
      throw err;
    }
    return new BatchingWriter(committer, name);
  }

  /**
   * Adds an item to the current batch and returns the batch's promise, shared by all its items: it
   * resolves once the batch committed (an outcome is reported only then).
   */
  append(item: AppendItem): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (item.outcome !== undefined && (item.job !== undefined || item.audit !== undefined))
      pushOutcome(this.#batch.outcomes, item.outcome, item.job, item.audit);
    if (item.outbox !== undefined) this.#batch.outbox.push(item.outbox);
    return this.#queued();
  }

  /**
   * Deletes outbox events the tracker accepted, after the next batch, in a transaction of its own: a
   * failure to delete them rejects this promise (`CR_ERR_STATE_WRITE`), never the batch's outcomes.
   */
  ack(ids: readonly number[]): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    this.#batch.delivered.push(...ids);
    const acked = new Promise<void>((resolve, reject) => this.#acks.push({ resolve, reject }));
    acked.catch(() => undefined);
    void this.#queued();
    return acked;
  }

  /** The current batch's promise, shared by all its items; schedules the batch's flush. */
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

  /** Hands the current batch to the committer now (a committer in this thread writes it at once). */
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
        for (const ack of acks) {
          if (deliveredError === undefined) ack.resolve();
          else ack.reject(deliveredError);
        }
      },
      (err: unknown) => {
        waiter.reject(err);
        for (const ack of acks) ack.reject(err);
      },
    );
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
  }

  /** Commits what is queued, waits for every batch, and closes the committer (a failed one too). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    await Promise.all(this.#inFlight);
    await this.#committer.close();
  }

  #closedError(): CognigyResetError {
    return new CognigyResetError('CR_ERR_STATE_WRITE', `${this.#name} is closed`);
  }
}

/**
 * What a writer thread posts: `ready` once (its store open and writable, or the coded reason it is not),
 * then one reply per batch, in order. Messages are already in our words, with no secret.
 */
export type WriterReply =
  | { ready: true }
  | { ready: false; code: string; message: string }
  | { id: number; ok: true; deliveredError?: string | undefined }
  | { id: number; ok: false; code: string; message: string };

const coded = (code: string, message: string, fallback: 'CR_ERR_STATE_OPEN' | 'CR_ERR_STATE_WRITE') =>
  new CognigyResetError(isErrorCode(code) ? code : fallback, message);

/** Commits on a writer thread (a module speaking `WriterReply`): hashing and encoding stay off this thread. */
export class ThreadCommitter implements Committer {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(e: Error | undefined): void; reject(err: unknown): void }>();
  readonly #ready: Promise<void>;
  readonly #exited: Promise<void>;
  #next = 0;
  #failed: Error | undefined;

  /** `stopped`: the error of every batch not committed when the thread ends or fails. */
  constructor(module: URL, workerData: unknown, stopped: string) {
    const worker = new Worker(module, {
      workerData,
      // The thread holds a batch or two at a time: a small young generation keeps its memory small too
      // (the default sizes grow a million-id run's peak RSS for nothing; docs/benchmarks.md).
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 },
    });
    this.#worker = worker;
    let ready!: Waiter;
    this.#ready = new Promise<void>((resolve, reject) => (ready = { resolve, reject }));
    this.#ready.catch(() => undefined);
    worker.on('message', (reply: WriterReply) => {
      if ('ready' in reply) {
        if (reply.ready) ready.resolve();
        else this.#fail(coded(reply.code, reply.message, 'CR_ERR_STATE_OPEN'), ready);
        return;
      }
      const posted = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (!reply.ok) posted?.reject(coded(reply.code, reply.message, 'CR_ERR_STATE_WRITE'));
      else if (reply.deliveredError === undefined) posted?.resolve(undefined);
      else posted?.resolve(new CognigyResetError('CR_ERR_STATE_WRITE', reply.deliveredError));
    });
    const error = new CognigyResetError('CR_ERR_STATE_WRITE', stopped);
    worker.on('error', () => this.#fail(error, ready));
    this.#exited = new Promise((resolve) =>
      worker.once('exit', () => {
        this.#fail(error, ready);
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

  commit(batch: BatchMessage): Promise<Error | undefined> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const id = this.#next++;
    const done = new Promise<Error | undefined>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject }),
    );
    this.#worker.postMessage({ id, batch });
    return done;
  }

  /** The thread commits what it was given, in order, before it reads the close; a failed one stops too. */
  async close(): Promise<void> {
    this.#worker.postMessage({ close: true });
    await this.#exited;
  }
}

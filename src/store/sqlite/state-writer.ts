/**
 * Batches what a bulk run must make durable — job rows, audit records, outbox events — into one
 * transaction every few milliseconds (or 512 items), committed on a writer thread (or in this thread for
 * small library uses). `append()` resolves once its batch committed: an outcome is reported only then.
 */
import { Worker } from 'node:worker_threads';
import { CognigyResetError } from '../../errors.js';
import type { AppendItem, OutcomeWriter } from '../port.js';
import { type BatchMessage, batchWriter, probeWritable, pushOutcome } from './batch-sql.js';
import type { StateDb } from './state-file.js';

/**
 * A short wait: outcomes held for their commit die young. A longer wait lets many survive two
 * scavenges into the old generation, which a million-id run pays for in peak RSS (docs/benchmarks.md).
 */
const FLUSH_MS = 4;
const FLUSH_ITEMS = 512;

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class StateWriter implements OutcomeWriter {
  readonly #worker: Worker | undefined;
  readonly #writeHere: ((batch: BatchMessage) => string | undefined) | undefined;
  /** Batches posted to the writer thread, by id. */
  readonly #pending = new Map<number, { waiter: Waiter; acks: Waiter[] }>();
  /** Who waits for the current batch's deletes of delivered outbox events (`ack`). */
  #acks: Waiter[] = [];
  /** Set while close() waits for the batches posted to the writer thread. */
  #onDrained: (() => void) | undefined;
  #batch: BatchMessage = { outcomes: [], outbox: [], delivered: [] };
  /** The current batch's promise and how to settle it; undefined while the batch is empty. */
  #committed: Promise<void> | undefined;
  #waiter: Waiter | undefined;
  #items = 0;
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  #failed: Error | undefined;
  #exited: Promise<void> | undefined;
  #ready: Promise<void> = Promise.resolve();
  #onReady: Waiter | undefined;

  /** `thread: true` commits on a worker thread opened on `path`; otherwise on `db`, in this thread. */
  constructor(options: { db: StateDb; path: string; thread: boolean }) {
    if (!options.thread) {
      try {
        probeWritable(options.db);
      } catch (err) {
        this.#ready = Promise.reject(notWritable(options.path, err));
        this.#ready.catch(() => undefined);
      }
      this.#writeHere = batchWriter(options.db);
      return;
    }
    const worker = new Worker(new URL('./writer-worker.js', import.meta.url), {
      workerData: { path: options.path },
      // The thread holds a batch or two at a time: a small young generation keeps its memory small too
      // (the default sizes grow a million-id run's peak RSS for nothing; docs/benchmarks.md).
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 },
    });
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#onReady = { resolve, reject };
    });
    this.#ready.catch(() => undefined);
    type Reply =
      | { id: number; ok: boolean; message?: string; deliveredError?: string }
      | { ready: boolean; message?: string };
    worker.on('message', (message: Reply) => {
      if ('ready' in message) {
        if (message.ready) this.#onReady?.resolve();
        else this.#fail(notWritable(options.path, new Error(message.message ?? 'error')));
        return;
      }
      const posted = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (this.#pending.size === 0) this.#onDrained?.();
      if (message.ok) {
        posted?.waiter.resolve();
        settleAcks(posted?.acks ?? [], message.deliveredError);
      } else {
        const err = new CognigyResetError(
          'CR_ERR_STATE_WRITE',
          `state file write failed: ${message.message ?? 'error'}`,
        );
        for (const ack of posted?.acks ?? []) ack.reject(err);
        this.#fail(err, posted?.waiter);
      }
    });
    worker.on('error', (err) =>
      this.#fail(
        new CognigyResetError('CR_ERR_STATE_WRITE', `state file writer failed: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    this.#exited = new Promise((resolve) =>
      worker.once('exit', () => {
        this.#fail(new CognigyResetError('CR_ERR_STATE_WRITE', 'the state file writer stopped'));
        resolve();
      }),
    );
  }

  #fail(err: Error, waiter?: Waiter): void {
    this.#failed ??= err;
    this.#onReady?.reject(err);
    waiter?.reject(err);
    for (const p of this.#pending.values()) {
      p.waiter.reject(err);
      for (const ack of p.acks) ack.reject(err);
    }
    this.#pending.clear();
    this.#onDrained?.();
  }

  /**
   * Resolves once the writer thread has the state file open and is ready to commit, so a run can start
   * its resets only then: a state file that cannot be written fails before anything is sent.
   */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Adds an item to the current batch and returns the batch's promise, shared by all its items: it
   * resolves once the batch committed (an outcome is reported only then).
   */
  append(item: AppendItem): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
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
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
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

  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    const waiter = this.#waiter;
    const acks = this.#acks;
    this.#acks = [];
    this.#batch = { outcomes: [], outbox: [], delivered: [] };
    this.#waiter = undefined;
    this.#committed = undefined;
    this.#items = 0;
    if (waiter === undefined) return;
    if (this.#writeHere !== undefined) {
      try {
        const deliveredError = this.#writeHere(batch);
        waiter.resolve();
        settleAcks(acks, deliveredError);
      } catch (err) {
        const failed = new CognigyResetError(
          'CR_ERR_STATE_WRITE',
          `state file write failed: ${(err as Error).message}`,
          { cause: err },
        );
        waiter.reject(failed);
        for (const ack of acks) ack.reject(failed);
      }
      return;
    }
    if (this.#failed !== undefined) {
      waiter.reject(this.#failed);
      for (const ack of acks) ack.reject(this.#failed);
      return;
    }
    const id = this.#next++;
    this.#pending.set(id, { waiter, acks });
    this.#worker!.postMessage({ id, batch });
  }

  /** Commits what is pending, waits for every batch, and stops the thread. */
  async close(): Promise<void> {
    this.flush();
    if (this.#pending.size > 0) {
      await new Promise<void>((resolve) => (this.#onDrained = resolve));
      this.#onDrained = undefined;
    }
    // After a failed commit too: the thread is still running, and would keep the process alive.
    if (this.#worker !== undefined) {
      this.#worker.postMessage({ close: true });
      await this.#exited;
    }
  }
}

/** Resolves `acks`, or rejects them when the delivered events could not be deleted (`deliveredError`). */
function settleAcks(acks: Waiter[], deliveredError: string | undefined): void {
  if (acks.length === 0) return;
  if (deliveredError === undefined) {
    for (const ack of acks) ack.resolve();
    return;
  }
  const err = new CognigyResetError(
    'CR_ERR_STATE_WRITE',
    `state file write failed (delivered outbox events): ${deliveredError}`,
    { cause: new Error(deliveredError) },
  );
  for (const ack of acks) ack.reject(err);
}

export function notWritable(path: string, cause: unknown): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_STATE_OPEN',
    `cannot write the state file ${path}: ${(cause as Error).message}; nothing was sent`,
    { cause },
  );
}

/** Throws CR_ERR_STATE_OPEN unless `db` can write the state file at `path`. */
export function checkWritable(db: StateDb, path: string): void {
  try {
    probeWritable(db);
  } catch (err) {
    throw notWritable(path, err);
  }
}

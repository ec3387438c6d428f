/**
 * Batches what a bulk run must make durable — job rows, audit records, outbox events — into one
 * transaction every few milliseconds (or 512 items), committed on a writer thread (or in this thread for
 * small library uses). `append()` resolves once its batch committed: an outcome is reported only then.
 */
import { Worker } from 'node:worker_threads';
import { CognigyResetError } from '../errors.js';
import type { ResetOutcome } from '../reset/outcome.js';
import { type AuditInput, type BatchMessage, batchWriter, type OutboxInput } from './batch-sql.js';
import type { StateDb } from './state-file.js';

const FLUSH_MS = 10;
const FLUSH_ITEMS = 512;

export interface AppendItem {
  job?: { jobId: string; index: number; outcome: ResetOutcome } | undefined;
  audit?: AuditInput | undefined;
  outbox?: OutboxInput | undefined;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class StateWriter {
  readonly #worker: Worker | undefined;
  readonly #writeHere: ((batch: BatchMessage) => void) | undefined;
  readonly #pending = new Map<number, Waiter[]>();
  /** Set while close() waits for the batches posted to the writer thread. */
  #onDrained: (() => void) | undefined;
  #batch: BatchMessage = { job: [], audit: [], outbox: [] };
  #waiters: Waiter[] = [];
  #items = 0;
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  #failed: Error | undefined;
  #exited: Promise<void> | undefined;

  /** `thread: true` commits on a worker thread opened on `path`; otherwise on `db`, in this thread. */
  constructor(options: { db: StateDb; path: string; thread: boolean }) {
    if (!options.thread) {
      this.#writeHere = batchWriter(options.db);
      return;
    }
    const worker = new Worker(new URL('./writer-worker.js', import.meta.url), {
      workerData: { path: options.path },
    });
    this.#worker = worker;
    worker.on('message', (message: { id: number; ok: boolean; message?: string }) => {
      const waiters = this.#pending.get(message.id) ?? [];
      this.#pending.delete(message.id);
      if (this.#pending.size === 0) this.#onDrained?.();
      if (message.ok) for (const w of waiters) w.resolve();
      else
        this.#fail(
          new CognigyResetError(
            'CR_ERR_STATE_WRITE',
            `state file write failed: ${message.message ?? 'error'}`,
          ),
          waiters,
        );
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

  #fail(err: Error, waiters: Waiter[] = []): void {
    this.#failed ??= err;
    for (const w of waiters) w.reject(err);
    for (const list of this.#pending.values()) for (const w of list) w.reject(err);
    this.#pending.clear();
    this.#onDrained?.();
  }

  append(item: AppendItem): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      if (item.job !== undefined)
        pushJobRow(this.#batch.job, item.job.jobId, item.job.index, item.job.outcome);
      if (item.audit !== undefined) this.#batch.audit.push(item.audit);
      if (item.outbox !== undefined) this.#batch.outbox.push(item.outbox);
      this.#waiters.push({ resolve, reject });
      if (++this.#items >= FLUSH_ITEMS) this.flush();
      else this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    });
  }

  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    const waiters = this.#waiters;
    this.#batch = { job: [], audit: [], outbox: [] };
    this.#waiters = [];
    this.#items = 0;
    if (waiters.length === 0) return;
    if (this.#writeHere !== undefined) {
      try {
        this.#writeHere(batch);
      } catch (err) {
        const error = new CognigyResetError(
          'CR_ERR_STATE_WRITE',
          `state file write failed: ${(err as Error).message}`,
          { cause: err },
        );
        for (const w of waiters) w.reject(error);
        return;
      }
      for (const w of waiters) w.resolve();
      return;
    }
    const id = this.#next++;
    this.#pending.set(id, waiters);
    // One string crosses the thread boundary far cheaper than thousands of cloned values. Directive
    // texts travel beside it, newline-joined (frames hold no raw newline), so their quotes are not escaped.
    const texts: string[] = [];
    for (const a of batch.audit) {
      const text = a[16];
      if (text !== null && !text.includes('\n')) {
        texts.push(text);
        a[16] = '';
      } else texts.push('');
    }
    this.#worker!.postMessage({ id, json: JSON.stringify(batch), texts: texts.join('\n') });
  }

  /** Commits what is pending, waits for every batch, and stops the thread. */
  async close(): Promise<void> {
    this.flush();
    if (this.#pending.size > 0) {
      await new Promise<void>((resolve) => (this.#onDrained = resolve));
      this.#onDrained = undefined;
    }
    if (this.#worker !== undefined && this.#failed === undefined) {
      this.#worker.postMessage({ close: true });
      await this.#exited;
    }
  }
}

function pushJobRow(values: unknown[], jobId: string, index: number, outcome: ResetOutcome): void {
  values.push(
    jobId,
    outcome.sessionId,
    index,
    outcome.outcome,
    outcome.verified ? 1 : 0,
    outcome.outcome !== 'failed' ? 1 : 0,
    outcome.error?.code ?? null,
    outcome.attempts,
    outcome.latencyMs,
    new Date().toISOString(),
  );
}

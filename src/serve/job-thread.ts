/**
 * A replica's chunk runs in a thread of their own, so that the thread that answers the API does no job
 * work: a status poll waits behind no frame, no ledger write and no outcome of a running job. The thread
 * is a `ChunkWorker` on a store connection of its own; what the job views show of its runs (rates,
 * latency, the flow controller) comes back as plain data a few times a second, and its metrics are read
 * at each scrape. Everything else the two threads share goes through the store, as between replicas.
 * A thread that dies is started again as a new owner: its claims lapse and are taken over, as a dead
 * replica's are.
 */
import { parentPort, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { CognigyResetError, isCognigyResetError, type ErrorCode } from '../errors.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import type { LocalView } from './job-model.js';
import { ChunkWorker, newOwner, type ChunkRunner, type WorkerOptions } from './job-worker.js';

type Metrics = MetricObjectWithValues<MetricValue<string>>[];

type ToThread =
  { type: 'wake' } | { type: 'stop'; jobId: string } | { type: 'metrics'; id: number } | { type: 'close' };

type FromThread =
  | { type: 'ready' }
  | { type: 'views'; views: [string, LocalView][] }
  | { type: 'metrics'; id: number; metrics: Metrics }
  | { type: 'closed' }
  | { type: 'failed'; error: { code: ErrorCode; message: string } };

/** How often the thread sends its jobs' views. */
const VIEWS_MS = 200;
/** How long a scrape waits for the thread's metrics before it goes without them. */
const METRICS_MS = 2000;
/** How long after a thread died another is started; doubled for each that could not start since. */
const RESTART_MS = 1000;
const RESTART_MAX_MS = 60_000;

export interface JobThreadOptions {
  /** The module the thread runs: it calls `runJobThread` with what builds its worker from `data`. */
  entry: URL;
  /** Plain data for the entry: where the store is, the config's path, the log level. No secret. */
  data: unknown;
  log: Logger;
}

/** In the thread's `workerData`: the entry's data, and the owner the thread claims chunks as. */
export interface JobThreadData {
  owner: string;
  data: unknown;
}

/** The main thread's side: a `ChunkRunner` whose runs are in the thread. */
export class JobThread implements ChunkRunner {
  #owner = newOwner();
  #worker: Worker;
  #views = new Map<string, LocalView>();
  #ready: Promise<void>;
  #closing = false;
  #closed: Promise<void> | undefined;
  /** A thread has started once: a later one that cannot start is tried again. */
  #started = false;
  /** Threads since the last that started which could not start. */
  #failures = 0;
  #nextId = 0;
  readonly #pendingMetrics = new Map<number, (metrics: Metrics) => void>();
  readonly #options: JobThreadOptions;

  constructor(options: JobThreadOptions) {
    this.#options = options;
    ({ worker: this.#worker, ready: this.#ready } = this.#spawn());
  }

  get owner(): string {
    return this.#owner;
  }

  /** Resolves once the thread's store is open and it claims chunks; rejects with why it could not start. */
  ready(): Promise<void> {
    return this.#ready;
  }

  wake(): void {
    this.#post({ type: 'wake' });
  }

  view(jobId: string): LocalView | undefined {
    return this.#views.get(jobId);
  }

  stop(jobId: string): void {
    this.#post({ type: 'stop', jobId });
  }

  /** The thread's metrics (a job's counters, its flow control's gauges), empty when it does not answer. */
  metrics(): Promise<Metrics> {
    if (this.#closing) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pendingMetrics.delete(id);
        resolve([]);
      }, METRICS_MS);
      this.#pendingMetrics.set(id, (metrics) => {
        clearTimeout(timer);
        resolve(metrics);
      });
      this.#post({ type: 'metrics', id });
    });
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    for (const resolve of this.#pendingMetrics.values()) resolve([]);
    this.#pendingMetrics.clear();
    // A thread that failed to start has nothing to stop.
    if (!(await this.#ready.then(() => true).catch(() => false))) return;
    const worker = this.#worker;
    const closed = new Promise<void>((resolve) => {
      worker.on('message', (message: FromThread) => {
        if (message.type === 'closed') resolve();
      });
      worker.once('exit', () => resolve());
    });
    worker.postMessage({ type: 'close' } satisfies ToThread);
    await closed;
    await worker.terminate();
    this.#views.clear();
  }

  #post(message: ToThread): void {
    if (this.#closing) return;
    try {
      this.#worker.postMessage(message);
    } catch {
      // The thread is gone: the one started in its place looks for work by itself.
    }
  }

  #spawn(): { worker: Worker; ready: Promise<void> } {
    const data: JobThreadData = { owner: this.#owner, data: this.#options.data };
    const worker = new Worker(this.#options.entry, { workerData: data });
    // The service's first thread: until one started, a thread that cannot start fails the start.
    const first = !this.#started;
    let started = false;
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: FromThread) => {
        switch (message.type) {
          case 'ready':
            started = true;
            this.#started = true;
            this.#failures = 0;
            resolve();
            break;
          case 'failed':
            // The first thread's reason fails the service's start; a later one's is said here.
            if (!first) this.#options.log.error({ err: message.error }, 'job thread could not start');
            reject(new CognigyResetError(message.error.code, message.error.message));
            break;
          case 'views':
            this.#views = new Map(message.views);
            break;
          case 'metrics':
            this.#pendingMetrics.get(message.id)?.(message.metrics);
            this.#pendingMetrics.delete(message.id);
            break;
          case 'closed':
            break;
        }
      });
      worker.on('error', (err) => {
        this.#options.log.error({ err: err.message, stack: err.stack }, 'job thread failed');
        reject(err);
      });
      worker.on('exit', (code) => {
        reject(new CognigyResetError('CR_ERR_API_INTERNAL', `the job thread exited (${code})`));
        // A scrape waiting for the dead thread's metrics goes on without them.
        for (const resolve of this.#pendingMetrics.values()) resolve([]);
        this.#pendingMetrics.clear();
        // The service's first thread that cannot start fails the service's start instead.
        if (this.#closing || (first && !started)) return;
        if (!started) this.#failures++;
        // Another thread, as another owner, takes the dead one's chunks over once their claims lapse.
        const inMs = Math.min(RESTART_MAX_MS, RESTART_MS * 2 ** this.#failures);
        this.#options.log.error({ code, restartInMs: inMs }, 'job thread exited: starting another');
        this.#views.clear();
        setTimeout(() => this.#restart(), inMs).unref();
      });
    });
    ready.catch(() => undefined);
    return { worker, ready };
  }

  #restart(): void {
    if (this.#closing) return;
    this.#owner = newOwner();
    ({ worker: this.#worker, ready: this.#ready } = this.#spawn());
  }
}

/** What a thread's entry builds from its data: the worker's options, its metrics, and what closes them. */
export interface ThreadParts {
  options: Omit<WorkerOptions, 'owner'>;
  metrics: ResetMetrics;
  close(): Promise<void>;
}

/**
 * In the thread: builds the worker from the thread's data (`open`), tells the main thread it is ready,
 * and answers its messages until it is closed.
 */
export async function runJobThread(
  data: JobThreadData,
  open: (data: unknown) => Promise<ThreadParts>,
): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('runJobThread runs in a worker thread');
  const send = (message: FromThread): void => port.postMessage(message);
  let parts: ThreadParts;
  try {
    parts = await open(data.data);
  } catch (err) {
    send({
      type: 'failed',
      error: isCognigyResetError(err)
        ? { code: err.code, message: err.message }
        : { code: 'CR_ERR_API_INTERNAL', message: (err as Error).message },
    });
    return;
  }
  const worker = new ChunkWorker({ ...parts.options, owner: data.owner });
  let sentViews = 0;
  const views = setInterval(() => {
    const now = worker.views();
    // Nothing new to say of no job: quiet.
    if (now.length === 0 && sentViews === 0) return;
    sentViews = now.length;
    send({ type: 'views', views: now });
  }, VIEWS_MS);
  port.on('message', (message: ToThread) => {
    switch (message.type) {
      case 'wake':
        worker.wake();
        break;
      case 'stop':
        worker.stop(message.jobId);
        break;
      case 'metrics':
        void parts.metrics.registry
          .getMetricsAsJSON()
          .then((metrics) => send({ type: 'metrics', id: message.id, metrics }));
        break;
      case 'close':
        clearInterval(views);
        void worker
          .close()
          .then(() => parts.close())
          .finally(() => {
            send({ type: 'closed' });
            port.close();
          });
        break;
    }
  });
  send({ type: 'ready' });
}

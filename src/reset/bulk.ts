/**
 * The bulk runner: pulls session ids from a stream as it goes (a million ids in flat memory), keeps as
 * many resets in flight as its depth limiter allows (`concurrency`, or an adaptive depth), consults a job
 * ledger so a resumed job skips what an earlier run finished, and stops gracefully (in-flight resets
 * finish) or at the first fatal error (401/403).
 */
import { type CognigyResetError, isCognigyResetError, isMarked } from '../errors.js';
import { CHANNELS, type DoneMessage } from './events.js';
import { LatencyHistogram } from './latency-histogram.js';
import { DepthLimiter } from './flow-control/depth-limiter.js';
import { blankOutcome, errorOf, type ResetOutcome } from './outcome.js';
import { onAbort } from '../util/on-abort.js';
import type { ResetPipeline } from './pipeline.js';
import { type SeenIds, SeenIdsInMemory } from './seen-ids.js';
import type { SessionTarget } from '../transports/transport.js';

export interface BulkTarget extends SessionTarget {
  sessionId: string;
  /** Position in the input, 0-based. */
  index: number;
  /** Set when the input line itself is invalid: the session fails with it and nothing is sent. */
  problem?: CognigyResetError | undefined;
}

/** `done`: skip; `unsure`: may have been sent before a crash, check its state first; `new`. */
export type LedgerState = 'done' | 'unsure' | 'new';

/** What an earlier run of the same job knows of each session. */
export interface JobLedger {
  /** The state of each target, in order: asked once per batch of input the runner pulls. */
  lookup(targets: readonly { sessionId: string; index: number }[]): Promise<LedgerState[]>;
  /** Called before input item `index` is sent; what it records is durable when it resolves. */
  reserve(index: number): Promise<void>;
}

export interface BulkOptions {
  /** Resets in flight, when `depth` is not given. @default 16 */
  concurrency?: number;
  /** The in-flight limit, fixed or adaptive; give the same one to the pipeline so it hears the latencies. */
  depth?: DepthLimiter | undefined;
  /** Stop taking new sessions; those in flight finish. */
  stop?: AbortSignal | undefined;
  /** Abort the resets in flight too. */
  signal?: AbortSignal | undefined;
  /**
   * End the run at once, its reason (a `CognigyResetError`) the summary's `fatal`: what was reported is
   * counted; resets still in flight are not waited for. For a run that can no longer settle by itself.
   */
  halt?: AbortSignal | undefined;
  ledger?: JobLedger | undefined;
  /**
   * Makes an outcome durable (job row, audit record, outbox event); awaited before the outcome is counted
   * and reported, but the worker does not wait for it before taking the next session.
   */
  persist?: ((outcome: ResetOutcome, index: number) => Promise<void>) | undefined;
  /** Validate and report each directive; send nothing. */
  dryRun?: boolean;
  /**
   * Stop taking new sessions once this many in a row failed because the engine could not be reached,
   * each after its retries: an engine that went away ends the run (fatal `CR_ERR_TRANSPORT_CONNECT`)
   * instead of failing every session left. 0 never stops. @default 32
   */
  maxUnreachable?: number;
  /**
   * The sessions taken so far: a session listed again is skipped (CR_ERR_RESET_DUPLICATE), never reset
   * twice. @default an in-memory set (see SeenIds for a stream of millions)
   */
  seen?: SeenIds | undefined;
  /**
   * Called once per session, after the ledger made the outcome durable; or, when it could not
   * (`persist` failed), with the outcome marked `audited: false`, so no reset goes unreported.
   */
  onOutcome?:
    ((outcome: ResetOutcome, index: number, target: BulkTarget) => void | Promise<void>) | undefined;
}

export interface BulkSummary {
  total: number;
  reset: number;
  verified: number;
  failed: number;
  skipped: number;
  byCode: Record<string, number>;
  /** Sessions that needed more than one attempt, and of those the ones that ended verified. */
  retried: number;
  recovered: number;
  latencyMs: { p50: number; p95: number; p99: number; mean: number };
  durationMs: number;
  /** Sessions finished (reset or failed, not skipped) per second. */
  throughput: number;
  interrupted: boolean;
  fatal: { code: string; message: string } | null;
  /** Outcomes reported without their record: the state file could not be written (`audited: false`). */
  notAudited: number;
}

/** Whether a failure says the engine could not be reached at all (not that it refused or broke a reset). */
function isUnreachable(code: string | undefined): boolean {
  return isMarked(code, 'unreachable');
}
export const DEFAULT_MAX_UNREACHABLE = 32;

/** Errors after which no other session can succeed either: stop taking new ones. */
function isFatal(code: string | undefined): boolean {
  return isMarked(code, 'fatal');
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** What `runBulk` takes: targets one by one, or in batches (arrays) — a batch costs one wait, not one per target. */
export type BulkSource =
  AsyncIterable<BulkTarget | readonly BulkTarget[]> | Iterable<BulkTarget | readonly BulkTarget[]>;

export async function runBulk(
  pipeline: ResetPipeline,
  targets: BulkSource,
  options: BulkOptions = {},
): Promise<BulkSummary> {
  const started = performance.now();
  const histogram = new LatencyHistogram();
  const summary: BulkSummary = {
    total: 0,
    reset: 0,
    verified: 0,
    failed: 0,
    skipped: 0,
    byCode: {},
    retried: 0,
    recovered: 0,
    latencyMs: { p50: 0, p95: 0, p99: 0, mean: 0 },
    durationMs: 0,
    throughput: 0,
    interrupted: false,
    fatal: null,
    notAudited: 0,
  };
  const seen: SeenIds = options.seen ?? new SeenIdsInMemory();
  const iterator =
    Symbol.asyncIterator in targets ? targets[Symbol.asyncIterator]() : targets[Symbol.iterator]();
  // Settles when the run must stop taking sessions: a worker waiting on the input (an idle stdin, a line
  // that never ends) stops waiting then, instead of when the next line comes.
  const unlisten: (() => void)[] = [];
  const stopping = new Promise<'stop'>((resolve) => {
    for (const signal of [options.stop, options.signal, options.halt])
      unlisten.push(onAbort(signal, () => resolve('stop')));
  });
  /** A worker stopped waiting for the input: what the input held after that was never seen. */
  let gaveUp = false;
  let exhausted = false;
  let fatal = false;
  // Targets pulled but not yet taken: a batch from the source is handed out without a wait per target.
  let queue: readonly BulkTarget[] = [];
  /** The ledger's verdict on each target of `queue`, asked in one lookup per batch; none without one. */
  let verdicts: readonly LedgerState[] | undefined;
  let queued = 0;
  let pulling: Promise<void> | undefined;
  const ledger = options.ledger;
  const refill = async (): Promise<void> => {
    // One pull at a time: an async iterator must not be asked twice at once.
    while (queued >= queue.length && !exhausted) {
      const next = await iterator.next();
      if (next.done === true) {
        exhausted = true;
        break;
      }
      const batch = Array.isArray(next.value)
        ? (next.value as readonly BulkTarget[])
        : [next.value as BulkTarget];
      let states: LedgerState[] | undefined;
      if (ledger !== undefined && batch.length > 0) {
        try {
          states = await ledger.lookup(batch);
        } catch (err) {
          // The ledger cannot say what an earlier run did: stop like a failed commit, nothing more sent.
          stopWith(err);
          return;
        }
      }
      [queue, verdicts, queued] = [batch, states, 0];
    }
  };
  /** The next target and the ledger's verdict on it, or undefined once the source is exhausted. */
  const take = async (): Promise<{ target: BulkTarget; state: LedgerState } | undefined> => {
    while (queued >= queue.length) {
      if (exhausted || reportError !== undefined) return undefined;
      pulling ??= refill().finally(() => (pulling = undefined));
      const first = await Promise.race([pulling.then(() => 'input' as const), stopping]);
      if (first === 'stop') gaveUp = true;
      if (isStopped() || reportError !== undefined) return undefined;
    }
    const state = verdicts?.[queued] ?? 'new';
    return { target: queue[queued++]!, state };
  };
  const depth = options.depth ?? new DepthLimiter(Math.max(1, Math.floor(options.concurrency ?? 16)));
  // One worker per slot the limit may ever allow; those past the limit in force wait for a slot.
  const workers = depth.ceiling;
  // Reports waiting for their commit; past this many (8 per slot of the limit in force), workers wait.
  const maxReports = (): number => Math.max(4096, depth.limit * 8);

  const one = async (target: BulkTarget, verdict: LedgerState): Promise<void> => {
    let outcome: ResetOutcome;
    let viaPipeline = false;
    const first = seen.firstIndex(target.sessionId, target.index);
    // A repeat is settled here and recorded nowhere: a ledger row for it would stand for the first.
    const state = first !== undefined ? 'done' : verdict;
    if (first !== undefined) {
      outcome = blankOutcome(target.sessionId, 'skipped', [], pipeline.plan.notClearable);
      outcome.error = {
        code: 'CR_ERR_RESET_DUPLICATE',
        message: `input item ${target.index + 1} lists the session of item ${first + 1} again: skipped (a job resets each session at most once)`,
      };
    } else if (target.problem !== undefined) {
      outcome = blankOutcome(target.sessionId, 'failed', [], pipeline.plan.notClearable);
      outcome.error = errorOf(target.problem);
    } else if (state === 'done') {
      outcome = blankOutcome(target.sessionId, 'skipped', pipeline.plan.cleared, pipeline.plan.notClearable);
      outcome.verified = true;
      outcome.skipReason = 'done-earlier';
    } else if (options.dryRun === true) {
      outcome = blankOutcome(target.sessionId, 'skipped', pipeline.plan.cleared, pipeline.plan.notClearable);
      outcome.skipReason = 'dry-run';
      try {
        pipeline.describe(target);
      } catch (err) {
        outcome.outcome = 'failed';
        outcome.error = errorOf(err as CognigyResetError);
      }
    } else {
      viaPipeline = true;
      if (ledger !== undefined) {
        try {
          await ledger.reserve(target.index);
        } catch (err) {
          // The ledger cannot promise a resume any more: stop like a failed commit, this session unsent.
          stopWith(err);
          return;
        }
      }
      outcome = await pipeline.reset(target, {
        signal: options.signal,
        precheck: state === 'unsure',
      });
    }
    if (!viaPipeline && options.dryRun !== true) {
      // Settled here, not by the pipeline: publish it too, so metrics and logs see every session.
      if (CHANNELS.done.hasSubscribers)
        CHANNELS.done.publish({ outcome, settledBy: 'runner', jobId: pipeline.jobId } satisfies DoneMessage);
    }
    // The outcome is reported only once the ledger made it durable, but the worker does not wait for
    // that commit: it takes the next session at once (reports waiting are bounded below).
    const durable =
      state !== 'done' && options.dryRun !== true && options.persist !== undefined
        ? options.persist(outcome, target.index)
        : undefined;
    if (durable === undefined) {
      await deliver({ outcome, target });
      return;
    }
    let group = groups.get(durable);
    if (group === undefined) {
      const list: Report[] = [];
      group = list;
      groups.set(durable, list);
      // A failed commit stops the run; the workers stop, and the summary names the error.
      // It is still reported, marked as not audited: the engine may have applied it.
      const done: Promise<void> = durable
        .then(
          () => deliverAll(list),
          (err: unknown) => {
            stopWith(err);
            for (const r of list) r.outcome.audited = false;
            return deliverAll(list);
          },
        )
        .catch((err: unknown) => {
          stopWith(err);
        })
        .finally(() => {
          groups.delete(durable);
          reports.delete(done);
          waiting -= list.length;
          while (waiting <= maxReports() && spaceWaiters.length > 0) spaceWaiters.shift()!();
        });
      reports.add(done);
    }
    group.push({ outcome, target });
    // One waiter per blocked worker, woken as commits land (not a race over every pending report).
    if (++waiting > maxReports()) await new Promise<void>((resolve) => spaceWaiters.push(resolve));
  };
  interface Report {
    outcome: ResetOutcome;
    target: BulkTarget;
  }
  /** Outcomes waiting for their commit, grouped by it: a persist hook hands one promise to a whole batch. */
  const groups = new Map<Promise<void>, Report[]>();
  const reports = new Set<Promise<void>>();
  const spaceWaiters: (() => void)[] = [];
  let waiting = 0;
  let reportError: Error | undefined;
  /** A report or the ledger failed: the workers stop, and the first error ends the run. */
  const stopWith = (err: unknown): void => {
    reportError ??= err instanceof Error ? err : new Error(String(err));
  };
  const maxUnreachable = Math.max(0, Math.floor(options.maxUnreachable ?? DEFAULT_MAX_UNREACHABLE));
  /** Sessions finished in a row that could not reach the engine. */
  let unreachable = 0;
  const deliver = (r: Report): void | Promise<void> => {
    count(r.outcome);
    return options.onOutcome?.(r.outcome, r.target.index, r.target);
  };
  const deliverAll = async (list: Report[]): Promise<void> => {
    let later: Promise<void>[] | undefined;
    for (const r of list) {
      const p = deliver(r);
      if (p !== undefined) (later ??= []).push(p);
    }
    if (later !== undefined) await Promise.all(later);
  };

  const count = (outcome: ResetOutcome): void => {
    summary.total++;
    if (outcome.audited === false) summary.notAudited++;
    if (outcome.outcome === 'skipped') summary.skipped++;
    else if (outcome.outcome === 'failed') summary.failed++;
    else summary.reset++;
    if (outcome.verified && outcome.outcome === 'reset') summary.verified++;
    if (outcome.retried) {
      summary.retried++;
      if (outcome.verified) summary.recovered++;
    }
    if (outcome.outcome !== 'skipped') histogram.record(outcome.latencyMs);
    const code = outcome.error?.code;
    if (code !== undefined) {
      summary.byCode[code] = (summary.byCode[code] ?? 0) + 1;
      if (isFatal(code) && !fatal) {
        fatal = true;
        summary.fatal = outcome.error;
      }
    }
    if (outcome.outcome !== 'skipped') unreachable = isUnreachable(code) ? unreachable + 1 : 0;
    if (maxUnreachable > 0 && unreachable >= maxUnreachable && !fatal) {
      fatal = true;
      summary.fatal = {
        code: code!,
        message: `the engine could not be reached for ${unreachable} sessions in a row, each after its retries: stopped taking new sessions (${outcome.error!.message})`,
      };
    }
  };

  const isStopped = (): boolean =>
    options.stop?.aborted === true || options.signal?.aborted === true || options.halt?.aborted === true;
  // A stop sends the workers waiting for a slot away, once (not a race per wait, which would pile up).
  void stopping.then(() => depth.abandon());
  const worker = async (): Promise<void> => {
    for (;;) {
      if (fatal || reportError !== undefined || isStopped()) return;
      // A slot below the in-flight limit; none when the run stopped while this worker waited.
      const slot = depth.acquire();
      if (slot !== undefined && !(await slot)) return;
      try {
        if (fatal || reportError !== undefined || isStopped()) return;
        if (queued < queue.length) {
          const state = verdicts?.[queued] ?? 'new';
          await one(queue[queued++]!, state);
          continue;
        }
        const next = await take();
        if (next === undefined) return;
        await one(next.target, next.state);
      } finally {
        depth.release();
      }
    }
  };

  // Resolves with the halt's reason; never settles without a halt.
  const halted = new Promise<Error>((resolve) =>
    unlisten.push(
      onAbort(options.halt, () =>
        resolve(options.halt!.reason instanceof Error ? options.halt!.reason : new Error('halted')),
      ),
    ),
  );
  let drained = false;
  try {
    const running = Promise.all(Array.from({ length: workers }, worker));
    let stuck = await Promise.race([running.then(() => undefined), halted]);
    // Taken now: a pull the workers stopped waiting for may still end the input later.
    drained = !gaveUp && exhausted && queued >= queue.length;
    while (stuck === undefined && reports.size > 0)
      stuck = await Promise.race([Promise.all(reports).then(() => undefined), halted]);
    if (stuck !== undefined) {
      reportError ??= stuck;
      fatal = true;
    }
    // A coded failure to persist (the state file could not be written) ends the run like any fatal stop:
    // the summary counts what was reported, and says why it stopped. Anything else is rethrown.
    if (reportError !== undefined) {
      if (!isCognigyResetError(reportError)) throw reportError;
      fatal = true;
      summary.fatal = errorOf(reportError);
    }
  } finally {
    for (const off of unlisten) off();
    // An async generator still inside a pull would run return() only once that pull settles: the
    // source's owner closes its stream instead (on the same stop signal).
    if (!exhausted && pulling === undefined && options.halt?.aborted !== true) await iterator.return?.();
    else if (!exhausted) void Promise.resolve(iterator.return?.()).catch(() => undefined);
    if (options.seen === undefined) seen.close?.();
  }
  // Aborting the resets in flight (a second Ctrl-C) interrupts a run even when every session was taken.
  summary.interrupted = (!drained || options.signal?.aborted === true) && !fatal;
  summary.durationMs = performance.now() - started;
  const finished = summary.reset + summary.failed;
  summary.throughput =
    summary.durationMs > 0 ? Math.round((finished / summary.durationMs) * 1000 * 10) / 10 : 0;
  summary.latencyMs = {
    p50: round(histogram.quantile(0.5)),
    p95: round(histogram.quantile(0.95)),
    p99: round(histogram.quantile(0.99)),
    mean: round(histogram.mean),
  };
  return summary;
}

/**
 * A replica's share of one service job: one `startJob` run (one transport, one writer, one pipeline that
 * never drains between chunks) over the chunks of the job this replica claims, one after another as the
 * pipeline pulls its input. The job's id is in its audit records, events and metrics; each chunk keeps a
 * ledger of its own (`StartJobDeps.ledgerOf`), so a chunk taken over from a replica that died resumes as a
 * job does: state checks first, nothing verified reset twice. A heartbeat extends the claims of the open
 * chunks with the outcomes written since the last one; a chunk whose sessions all have an outcome is
 * finished at once. A claim lost to another owner stops the run. (The worker stops the shares of a job
 * cancelled or failed anywhere.)
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isCognigyResetError, isMarked } from '../errors.js';
import type { BulkTarget } from '../reset/bulk.js';
import { outcomeLine } from '../reset/outcome.js';
import { startJob } from '../runner/start-job.js';
import type { JobHandle, JobSpec } from '../runner/types.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import type { WebhookDeliverer } from '../sinks/webhook.js';
import type { ClaimedJobChunk, ServiceJobRecord, Store } from '../store/index.js';
import type { TenantConfig } from './config.js';
import { chunkTargets, ledgerIdOf, lineKeys, lineKey } from './job-chunks.js';
import { errorOf, LIVE, progressWith, type JobRequest, type LocalJob } from './job-model.js';

export type BuildSpec = (
  tenant: TenantConfig,
  fields: JobRequest['fields'],
  id: string,
  actor: string,
) => JobSpec;

type Fatal = { code: string; message: string } | null;

export interface ChunkContext {
  store: Store;
  owner: string;
  leaseMs: number;
  log: Logger;
  metrics?: ResetMetrics | undefined;
  tenants: ReadonlyMap<string, TenantConfig>;
  build: BuildSpec;
  /** What this replica keeps of the job: its latency, its running shares. */
  local(jobId: string): LocalJob;
  /** The replica stops taking work: a chunk it stopped is left for another run. */
  closing(): boolean;
  /** The engine refused this replica's credentials for `tenant`: it claims none of its chunks for a while. */
  credentialsRefused(tenant: string): void;
  /** The tenant's standing analytics deliverer, when it posts outcome events to a webhook. */
  webhookOf(tenant: string): WebhookDeliverer | undefined;
  /** A chunk of the job was finished (`fatal`: its run's failure, or null): the job may have ended. */
  finished(jobId: string, fatal: Fatal): Promise<void>;
}

/**
 * Claims of a chunk whose runs failed for their replica's sake (the engine refused its credentials, or
 * its store connection failed), this one included, before the job fails: a replica with a stale secret or
 * a lost connection leaves the chunk to the others, but a failure everywhere (or on the only replica: the
 * chunk comes back to it) fails the job.
 */
const REPLICA_FAULT_TRIES = 3;

/** A chunk this share claimed: its outcomes not yet written to the store, and how many are still to come. */
interface OpenChunk {
  chunk: ClaimedJobChunk;
  lines: string[];
  remaining: number;
  /** The sessions earlier owners wrote a line for (`lineKey`): this run does not list them again. */
  listed: ReadonlySet<string>;
  /** Its finish failed, and may have been written all the same (a connection lost after the commit). */
  finishUnsure?: true;
}

export class JobShare {
  readonly jobId: string;
  /** Claimed by the worker for this job while the share runs: taken before any new claim. */
  readonly #adopted: ClaimedJobChunk[] = [];
  /** Claimed and not finished, by chunk number. */
  readonly #open = new Map<number, OpenChunk>();
  /** Every chunk this share took, for the index → ledger mapping (first index, count, chunk number). */
  readonly #ranges: [number, number, number][] = [];
  readonly #ctx: ChunkContext;
  readonly #log: Logger;
  #handle: JobHandle | undefined;
  #lost = false;
  /** The last heartbeat, on its way or done (it never rejects). */
  #beating: Promise<void> | undefined;
  /** The run still takes input: a chunk adopted now is run. */
  #taking = true;
  /** The next chunk's claim, on its way or settled (never rejects): a run that ends waits for it. */
  #claiming: Promise<unknown> = Promise.resolve();

  constructor(first: ClaimedJobChunk, ctx: ChunkContext) {
    this.jobId = first.jobId;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ jobId: first.jobId });
    this.adopt(first);
  }

  /**
   * Takes a chunk of this job that the worker claimed: the run takes it next. False once the run takes
   * no more input (the worker starts another run for it).
   */
  adopt(chunk: ClaimedJobChunk): boolean {
    // A chunk this run took before comes back only when the job was reopened: a fresh run takes it.
    if (!this.#taking || this.#ranges.some(([, , n]) => n === chunk.chunkNo)) return false;
    this.#adopted.push(chunk);
    this.#track(chunk);
    return true;
  }

  async run(): Promise<void> {
    try {
      await this.#run();
    } finally {
      this.#taking = false;
      // The pipeline may have given up a pull whose claim is still waiting for the store: it lands given
      // back, before the replica lets its chunks go or closes the store.
      await this.#claiming;
    }
  }

  async #run(): Promise<void> {
    const { store, jobId } = { store: this.#ctx.store, jobId: this.jobId };
    const record = await store.getServiceJob(jobId);
    // Cancelled or failed since the claim: the chunks are done with; a resume opens them again.
    if (record === undefined || !LIVE.has(record.state)) return this.#end(null);
    const tenant = this.#ctx.tenants.get(record.tenant);
    if (tenant === undefined)
      return this.#end({
        code: 'CR_ERR_API_CONFIG',
        message: `tenant ${record.tenant} is no longer configured`,
      });
    const request = record.request as unknown as JobRequest;
    let spec: JobSpec;
    try {
      spec = this.#ctx.build(tenant, request.fields, jobId, request.actor);
    } catch (err) {
      return this.#end(errorOf(err));
    }
    // Claimed while the replica began to stop: its close gives the claims up.
    if (this.#ctx.closing()) return;
    const duplicateOf = new Map<number, number>();
    const handle = startJob(
      spec,
      { batches: (stop) => this.#batches(stop, duplicateOf) },
      {
        credentials: tenant.credentials,
        log: this.#log,
        store,
        metrics: this.#ctx.metrics,
        seen: () => ({ firstIndex: (_sessionId, at) => duplicateOf.get(at) }),
        ledgerOf: (index) => ledgerIdOf(jobId, this.#chunkOf(index)),
        webhook: this.#ctx.webhookOf(record.tenant),
      },
    );
    this.#handle = handle;
    // The reader attaches now: outcomes that come before the first await below are not dropped.
    const events = handle.events();
    const local = this.#ctx.local(jobId);
    local.handles.add(handle);
    if (this.#ctx.closing()) handle.stop();
    local.controller = handle.status().controller ?? local.controller;
    await this.#start(record, local.controller);
    const beats = new AbortController();
    const beating = this.#beat(beats.signal);
    let fatal: Fatal = null;
    let complete = false;
    let refused = false;
    let credentialsRefused = false;
    try {
      for await (const event of events) {
        if (event.type !== 'outcome') continue;
        recordLatency(local, event.outcome);
        const open = this.#open.get(this.#chunkOf(event.index));
        if (open === undefined) continue;
        // A session an earlier owner recorded and listed is found done: its line stands.
        const { outcome } = event;
        if (outcome.skipReason !== 'done-earlier' || !open.listed.has(lineKey(outcome)))
          open.lines.push(`${JSON.stringify(outcomeLine(outcome))}\n`);
        // The engine refused this replica's credentials: no chunk is finished before the run's end says
        // whether it is left to another replica, whose run tries its failed sessions again.
        if (outcome.error?.code.startsWith('CR_ERR_AUTH_') === true) credentialsRefused = true;
        // A store that fails here fails no session: the chunk's claim lapses and it runs again, its
        // ledger skipping what was done; the run goes on reading (a reader that left would hold it).
        if (--open.remaining === 0 && !credentialsRefused)
          await this.#finish(open, null).catch((err: unknown) =>
            this.#log.warn(
              { chunk: open.chunk.chunkNo, err: errorOf(err) },
              "chunk not finished: the run's next beat writes its lines, its end finishes it",
            ),
          );
      }
      const summary = await handle.done;
      fatal = summary.fatal;
      complete = !summary.interrupted;
      refused = fatal?.code === 'CR_ERR_STATE_JOB_RUNNING';
      if (fatal !== null)
        this.#log[refused ? 'info' : 'warn'](
          { err: fatal },
          refused ? 'chunk ledger still held elsewhere: its chunks lapse and run again' : 'job share failed',
        );
      local.controller = handle.status().controller ?? local.controller;
    } catch (err) {
      // A chunk ledger's lease of a run that died on another host still holds: the chunks are left to
      // lapse, and claimed again once it has.
      refused = isCognigyResetError(err) && err.code === 'CR_ERR_STATE_JOB_RUNNING';
      fatal = errorOf(err);
      this.#log[refused ? 'info' : 'warn'](
        // An error of no known code is a defect: its stack says where.
        { err: fatal, ...(isCognigyResetError(err) ? {} : { stack: (err as Error).stack }) },
        refused ? 'chunk ledger still held elsewhere' : 'job share failed',
      );
    } finally {
      // The pipeline reads no more: a claim that lands from here on is given back.
      this.#taking = false;
      local.handles.delete(handle);
      beats.abort();
      await beating;
    }
    const storeLost = isMarked(fatal?.code, 'storeLost');
    const credentials = fatal?.code.startsWith('CR_ERR_AUTH_') === true;
    if ((storeLost || credentials) && this.#othersMayTry()) {
      // The failure is this replica's, not the job's: its connection to the store failed, or its secret
      // for the tenant may be the stale one. Its chunks go back, for a run with a connection or a secret of
      // its own (here or on another replica), whose ledgers skip what was done.
      if (storeLost)
        this.#log.warn(
          { err: fatal },
          "the store failed this replica's run: its chunks of the job are given back",
        );
      else {
        this.#log.warn(
          { err: fatal, tenant: record.tenant },
          "the engine refused this replica's credentials: its chunks of the job are left to other replicas",
        );
        this.#ctx.credentialsRefused(record.tenant);
      }
      await this.#writeOpen(true);
      return;
    }
    if (this.#lost || refused) {
      // The chunks this run still holds keep the outcomes it wrote since the last beat, for the route.
      await this.#writeOpen(false);
      // Every chunk of the job may have been finished meanwhile, by this run or another: the job ends.
      await this.#ctx.finished(jobId, null).catch(() => undefined);
      return;
    }
    if (this.#ctx.closing() && !complete && fatal === null) {
      // Stopped by this replica's close: what it did is written, and the chunks are left for another
      // replica or the next start.
      await this.#heartbeat();
      return;
    }
    if (fatal === null && !complete && (await this.#live())) {
      // Stopped for a cancel that a resume undid since: a chunk claimed after the resume is this run's, and
      // its sessions are not done. The chunks go back at once, for a fresh run of the job.
      this.#taking = false;
      await this.#writeOpen(true);
      return;
    }
    // Failed, or stopped because the job ended (a chunk of a job resumed meanwhile is no longer this
    // owner's: the finish is refused, and the chunk runs again).
    await this.#end(fatal);
    // A second chance for a job whose last chunk was finished while ending it failed (a store error).
    await this.#ctx
      .finished(jobId, null)
      .catch((err: unknown) =>
        this.#log.warn({ err: errorOf(err) }, 'job end not written: the next chunk end or run tries again'),
      );
  }

  /** The job is queued or running now (unread: taken as not). */
  async #live(): Promise<boolean> {
    const record = await this.#ctx.store.getServiceJob(this.jobId).catch(() => undefined);
    return record !== undefined && LIVE.has(record.state);
  }

  /** The chunks' sessions, claimed one chunk after another as the pipeline takes them. */
  async *#batches(stop: AbortSignal, duplicateOf: Map<number, number>): AsyncIterable<readonly BulkTarget[]> {
    try {
      for (;;) {
        const chunk =
          stop.aborted || this.#ctx.closing() || this.#lost
            ? undefined
            : (this.#adopted.shift() ?? (await this.#claim(stop)));
        if (chunk === undefined) return;
        if (chunk.claims > 0)
          this.#log.info(
            { chunk: chunk.chunkNo, previousOwner: chunk.previousOwner, claims: chunk.claims },
            'chunk taken over',
          );
        const { targets, duplicateOf: repeats } = chunkTargets(chunk);
        for (const [index, at] of repeats) duplicateOf.set(index, at);
        yield* targets.batches(stop) as Iterable<readonly BulkTarget[]>;
      }
    } finally {
      // The pipeline takes no more input, whether it read to the end or stopped.
      this.#taking = false;
    }
  }

  #claim(stop: AbortSignal): Promise<ClaimedJobChunk | undefined> {
    const claiming = this.#claimNext(stop);
    this.#claiming = claiming.catch(() => undefined);
    return claiming;
  }

  async #claimNext(stop: AbortSignal): Promise<ClaimedJobChunk | undefined> {
    const { store, owner, leaseMs } = this.#ctx;
    const chunk = await store.claimJobChunk({ owner, leaseMs, jobs: [this.jobId] });
    if (chunk === undefined) return undefined;
    if (!this.#taking || stop.aborted || this.#ctx.closing() || this.#lost) {
      // Claimed while the run stopped taking input: nothing runs it here, so another run takes it at once.
      await store
        .giveBackJobChunk(this.jobId, chunk.chunkNo, owner)
        .catch((err: unknown) =>
          this.#log.warn(
            { chunk: chunk.chunkNo, err: errorOf(err) },
            'chunk not given back: its claim lapses',
          ),
        );
      return undefined;
    }
    if (this.#ranges.some(([, , n]) => n === chunk.chunkNo)) {
      // A chunk this run took before: the job was resumed while this run went on, and its ledgers are
      // this run's. The chunk is left (its claim lapses) for a fresh run, and this one takes no more input.
      this.#log.info({ chunk: chunk.chunkNo }, 'job reopened under this run: leaving its chunks');
      return undefined;
    }
    this.#track(chunk);
    return chunk;
  }

  #track(chunk: ClaimedJobChunk): void {
    this.#open.set(chunk.chunkNo, {
      chunk,
      lines: [],
      remaining: chunk.count,
      listed: lineKeys(chunk.outcomes),
    });
    this.#ranges.push([chunk.firstIndex, chunk.count, chunk.chunkNo]);
  }

  #chunkOf(index: number): number {
    for (const [first, count, chunkNo] of this.#ranges)
      if (index >= first && index < first + count) return chunkNo;
    throw new Error(`input index ${index} is in no chunk of this run`);
  }

  /** The job's first claim starts it; a cancel that landed since the job was read stays. */
  async #start(record: ServiceJobRecord, controller: string | null): Promise<void> {
    if (record.state !== 'queued') return;
    await this.#ctx.store
      .updateServiceJob(this.jobId, {
        state: 'running',
        from: ['queued'],
        progress: { ...progressWith(record, { startedAt: new Date().toISOString(), controller }) },
      })
      .catch((err: unknown) => this.#log.warn({ err: errorOf(err) }, 'job state not written'));
  }

  async #beat(signal: AbortSignal): Promise<void> {
    const every = Math.min(this.#ctx.leaseMs / 3, 1000);
    for (;;) {
      try {
        await delay(every, undefined, { signal });
      } catch {
        return;
      }
      await this.#heartbeat();
      if (this.#lost) return;
      await this.#sharePace();
    }
  }

  /**
   * Tells the run's flow controller how many replicas work on the job now (the owners of its live claims):
   * they share the tenant's cap, so each takes its share at once when one joins or leaves.
   */
  async #sharePace(): Promise<void> {
    try {
      const { owners } = await this.#ctx.store.jobChunkSummary(this.jobId);
      this.#handle?.setPeers(Math.max(1, owners.length));
    } catch {
      // Read again at the next beat; the rate adapts on the engine's refusals meanwhile.
    }
  }

  /** Extends the open chunks' claims with the outcomes written since; a lost claim stops the run. */
  #heartbeat(): Promise<void> {
    const beat = this.#beatOnce();
    this.#beating = beat;
    return beat;
  }

  async #beatOnce(): Promise<void> {
    const { store, owner, leaseMs } = this.#ctx;
    for (const open of [...this.#open.values()]) {
      // Finished by this run since the beat began: its claim was given up with its last lines.
      if (!this.#open.has(open.chunk.chunkNo)) continue;
      const outcomes = open.lines.join('');
      open.lines = [];
      let held: boolean;
      try {
        held = await store.heartbeatJobChunk(this.jobId, open.chunk.chunkNo, { owner, leaseMs, outcomes });
      } catch (err) {
        // Tried again at the next beat, with what this one carried.
        open.lines.unshift(outcomes);
        this.#log.warn({ err: errorOf(err) }, 'chunk heartbeat not written');
        continue;
      }
      if (!held && open.finishUnsure === true) {
        // The finish that failed was written after all (or the claim lapsed meanwhile): the chunk is no
        // longer this run's, and nothing else of the run is lost. Its lines are logged, in case they were not.
        this.#open.delete(open.chunk.chunkNo);
        open.lines = [outcomes];
        this.#reportLines(
          open,
          'chunk finished by the write that seemed to fail, or claimed by another owner',
        );
        continue;
      }
      if (!held) {
        this.#lost = true;
        this.#log.warn({ chunk: open.chunk.chunkNo }, 'chunk claim lost to another owner: stopping at once');
        this.#handle?.abort();
        return;
      }
    }
  }

  /**
   * Another replica may run the open chunks with the credentials or the store connection this one lacks:
   * none came back to this replica unclaimed by any other since it left it, nor was claimed
   * `REPLICA_FAULT_TRIES` times.
   */
  #othersMayTry(): boolean {
    return [...this.#open.values()].every(
      ({ chunk }) => chunk.claims < REPLICA_FAULT_TRIES - 1 && chunk.previousOwner !== this.#ctx.owner,
    );
  }

  /**
   * Writes the open chunks' outcomes since the last beat (a chunk another owner holds now refuses them):
   * `giveUp` also lets their claims lapse at once, and the run holds them no more.
   */
  async #writeOpen(giveUp: boolean): Promise<void> {
    const { store, owner, leaseMs } = this.#ctx;
    for (const open of [...this.#open.values()]) {
      if (giveUp) this.#open.delete(open.chunk.chunkNo);
      else if (open.lines.length === 0) continue;
      const outcomes = open.lines.join('');
      open.lines = [];
      await store
        .heartbeatJobChunk(this.jobId, open.chunk.chunkNo, { owner, leaseMs: giveUp ? 0 : leaseMs, outcomes })
        .catch((err: unknown) => {
          this.#log.warn(
            { err: errorOf(err) },
            giveUp
              ? 'chunk not given up: its claim lapses'
              : 'outcome lines not written: the chunk runs again',
          );
          if (giveUp) open.lines = [outcomes];
        });
      if (giveUp) this.#reportLines(open);
    }
  }

  /** Finishes one chunk: its last outcomes written, its ledger settled, the job told. */
  async #finish(open: OpenChunk, fatal: Fatal): Promise<void> {
    const { store, owner } = this.#ctx;
    const { chunkNo } = open.chunk;
    this.#open.delete(chunkNo);
    const outcomes = open.lines.join('');
    open.lines = [];
    await this.#handle?.settleLedger(ledgerIdOf(this.jobId, chunkNo), fatal === null).catch(() => undefined);
    // A beat on its way with the chunk's earlier lines lands first: a finish that overtook it would have
    // the store refuse it, and the run take that for a claim lost.
    await this.#beating;
    let finished: boolean;
    try {
      finished = await store.finishJobChunk(this.jobId, chunkNo, { owner, outcomes, error: fatal });
    } catch (err) {
      // The lines may be the only record of these sessions' resets (one the audit could not take says
      // so): the run's next beat, or its end, writes them.
      open.lines.unshift(outcomes);
      open.finishUnsure = true;
      this.#open.set(chunkNo, open);
      throw err;
    }
    if (finished) await this.#ctx.finished(this.jobId, fatal);
  }

  /** Logs the outcome lines no write took, session by session: the log is then their only record. */
  #reportUnwritten(): void {
    for (const open of this.#open.values()) this.#reportLines(open);
  }

  #reportLines(open: OpenChunk, why = 'the store failed'): void {
    const lines = open.lines.join('');
    open.lines = [];
    if (lines === '') return;
    this.#log.error(
      { chunk: open.chunk.chunkNo, outcomes: lines.trimEnd().split('\n') },
      `outcome lines not written (${why}): unless the chunk's finish took them, these are their only record`,
    );
  }

  /** The run takes no more chunks, and ends every one it holds. */
  async #end(fatal: Fatal): Promise<void> {
    this.#taking = false;
    try {
      await this.#finishAll(fatal);
    } finally {
      this.#reportUnwritten();
    }
  }

  async #finishAll(fatal: Fatal): Promise<void> {
    for (const open of [...this.#open.values()]) await this.#finish(open, fatal);
  }
}

function recordLatency(local: LocalJob, outcome: { outcome: string; latencyMs: number }): void {
  if (outcome.outcome === 'skipped') return;
  local.latency.record(outcome.latencyMs);
  local.recent.record(outcome.latencyMs);
}

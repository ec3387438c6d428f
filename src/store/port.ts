/**
 * The store port: everything durable, behind one async interface. The runner, the CLI's `audit`
 * commands and the service speak only this; SQLite (`src/store/sqlite/`) implements it today, and a
 * second backend runs the same contract suite (`test/helpers/store-contract.ts`).
 *
 * Every method may fail with a `CognigyResetError` of the STATE area (`CR_ERR_STATE_*`): never raw driver
 * text. No method takes or returns a secret: API keys are stored and looked up by their hash.
 */
import type { AuditContext } from '../audit/record.js';
import type { AuditRecord, ChainProblem } from '../audit/chain.js';
import type { ResetOutcome } from '../reset/outcome.js';

/** What an earlier run of the same job knows of a session. */
export type LedgerVerdict = 'done' | 'unsure' | 'new';

/** Who holds a job's lease, and until when it holds unless it heartbeats. */
export interface JobLease {
  /** An opaque owner id: host, pid and process start for a CLI run; a replica id for a service. */
  owner: string;
  host: string;
  pid: number;
  /** ISO date-times. */
  since: string;
  expiresAt: string;
}

export interface OpenJobOptions {
  jobId: string;
  /** Compared with the settings stored for the job: a mismatch is `CR_ERR_STATE_JOB_MISMATCH`. */
  settings: Record<string, unknown>;
  /** This run's lease: how long a claim lasts without a heartbeat. */
  leaseMs: number;
}

/** A job opened and claimed by this run: its ledger, its lease, and how it ends. */
export interface JobClaimHandle {
  readonly jobId: string;
  /** An earlier run of the job exists. */
  readonly resumed: boolean;
  /**
   * The lease of a run this one took over without seeing it end: its lease expired (another host, or a
   * process that stopped heartbeating). Undefined when there was none, or its process is known gone.
   */
  readonly takenOver: JobLease | undefined;
  /**
   * What earlier runs know of each target, in input order: one round trip per batch of input, so a
   * ledger behind a network does not cost one per session.
   */
  lookup(targets: readonly { sessionId: string; index: number }[]): Promise<LedgerVerdict[]>;
  /** Called before input item `index` is sent; what it records is durable when it resolves. */
  reserve(index: number): Promise<void>;
  /** Extends the lease; fails `CR_ERR_STATE_JOB_LOST` when another run took the job over meanwhile. */
  heartbeat(): Promise<void>;
  /** Marks the job finished (`complete`: every session has a done outcome). */
  finish(complete: boolean): Promise<void>;
  /** Gives up the lease; a later run may claim the job at once. */
  release(): Promise<void>;
  /** Counts by outcome of what is recorded for the job. */
  counts(): Promise<Record<string, number>>;
}

/** One outcome to make durable, with what goes with it, in one transaction. */
export interface AppendItem {
  /** The outcome that `job` and `audit` record (an item with only an outbox event needs none). */
  outcome?: ResetOutcome | undefined;
  /** Record the outcome in this job's ledger, as input item `index`. */
  job?: { jobId: string; index: number } | undefined;
  /** Append an audit record for the outcome, in this context (`src/audit/` builds it). */
  audit?: AuditContext | undefined;
  /** An analytics event for the outbox. */
  outbox?: OutboxInput | undefined;
}

export interface OutboxInput {
  /** The idempotency key the receiver sees. */
  key: string;
  /** SHA-256 of the webhook URL: the outbox never stores the URL. */
  urlSha256: string;
  payload: string;
}

export interface OutboxEvent {
  id: number;
  key: string;
  payload: string;
}

export interface AuditFilter {
  sessionId?: string | undefined;
  jobId?: string | undefined;
  /** ISO date-times, inclusive / exclusive. */
  since?: string | undefined;
  until?: string | undefined;
  outcome?: string | undefined;
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  headSeq: number;
  headHash: string;
  /** With an anchor: the seq of the record that carries it. */
  anchorSeq: number | undefined;
  problem: ChainProblem | null;
}

/** A service API key as stored: never the key itself. */
export interface ApiKeyRecord {
  id: string;
  /** SHA-256 of the key, hex. */
  hash: string;
  label: string;
  scopes: string[];
  tenants: string[];
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** A job as the service lists it. */
export interface JobRecord {
  jobId: string;
  settings: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  runs: number;
  finished: boolean;
  lease: JobLease | null;
}

/** The Idempotency-Key a service job was created with: the API key's id scopes it, as Stripe scopes keys per account. */
export interface ServiceJobIdempotency {
  /** The id of the API key that sent the request (never the key). */
  keyId: string;
  /** The `Idempotency-Key` header's value. */
  key: string;
  /** SHA-256 of the request (hex): the same key with another request is refused. */
  requestHash: string;
}

/**
 * A job of the service (`cognigy-reset serve`) as the store keeps it, so that any replica lists it, a
 * restart runs it on, and an Idempotency-Key outlives the process. `request` and `progress` are JSON the
 * service alone reads; the store filters and orders by the other fields only. Neither holds a secret.
 */
export interface ServiceJobRecord {
  id: string;
  /** The service config's tenant name. */
  tenant: string;
  /** `queued`, `running`, `succeeded`, `failed` or `cancelled`. */
  state: string;
  /** ISO date-times. */
  createdAt: string;
  updatedAt: string;
  /** What was asked: the request's fields (no sessions), the actor, the number of sessions. */
  request: Record<string, unknown>;
  /** How far it got: counts, error codes, latency, start and end. */
  progress: Record<string, unknown>;
  idempotency: ServiceJobIdempotency | null;
}

export interface ServiceJobUpdate {
  state: string;
  progress: Record<string, unknown>;
  /** Only when the job's state is one of these now. */
  from?: readonly string[] | undefined;
}

export interface ServiceJobFilter {
  /** Only jobs of these tenants; undefined or empty: every tenant. */
  tenants?: readonly string[] | undefined;
  state?: string | undefined;
  /** At most this many. */
  limit: number;
  /** The id of the last job of the page before: the page starts after it (empty when no such job). */
  after?: string | undefined;
}

/** Writes that commit together in batches: an outcome is reported only once its batch committed. */
export interface OutcomeWriter {
  /** Resolves once the item's batch committed; rejects `CR_ERR_STATE_WRITE` when it could not. */
  append(item: AppendItem): Promise<void>;
  /** Deletes accepted outbox events in the writer's next batch (in a transaction of their own). */
  ack(ids: readonly number[]): Promise<void>;
  /** Commits what is queued, then stops taking work. */
  close(): Promise<void>;
}

/** A slice of a service job's sessions, as the job's creator writes it: replicas claim slices, not jobs. */
export interface JobChunkInput {
  /** 0, 1, 2 … in input order. */
  chunkNo: number;
  /** The input index of the chunk's first session: its sessions are `firstIndex … firstIndex + count - 1`. */
  firstIndex: number;
  count: number;
  /** The chunk's sessions as JSON Lines, one target object a line (the service's own format). */
  targets: string;
}

/** A chunk a replica claimed: its lease runs until it heartbeats or finishes it. */
export interface ClaimedJobChunk extends JobChunkInput {
  jobId: string;
  /** Claims before this one: more than 0 means an earlier owner stopped or died before finishing it. */
  claims: number;
  /** The owner of the claim before this one, when it had not finished the chunk; null otherwise. */
  previousOwner: string | null;
  /** The outcome lines earlier owners wrote (heartbeats of a claim that lapsed): '' for a fresh chunk. */
  outcomes: string;
}

/** Sessions of ledgers by outcome, how many of them verified, and by error code (`Store.ledgerCounts`). */
export interface LedgerCounts {
  outcomes: Record<string, number>;
  verified: number;
  errors: Record<string, number>;
}

/** Who claims a chunk, for how long, and which chunks it may take (`Store.claimJobChunk`). */
export interface ChunkClaimOptions {
  owner: string;
  leaseMs: number;
  jobs?: readonly string[] | undefined;
  tenants?: readonly string[] | undefined;
}

/** Where a job's chunks stand, across every replica. */
export interface JobChunkSummary {
  chunks: number;
  /** Chunks finished. */
  done: number;
  /** The numbers of the chunks finished, in order: a finished chunk's ledger no longer changes. */
  doneChunks: number[];
  /** Chunks under an unexpired claim. */
  leased: number;
  /** Owners of unexpired claims, sorted. */
  owners: string[];
  /** The failure a finished chunk recorded (the first, by chunk number), or null. */
  error: { code: string; message: string } | null;
}

export interface Store {
  /** `sqlite` or `postgres`. */
  readonly kind: string;
  /** Where it lives, safe to print (a path; a URL with its password redacted). */
  readonly location: string;

  /** Fails `CR_ERR_STATE_WRITE` unless this store can be written now: checked before anything is sent. */
  checkWritable(): Promise<void>;

  /** Opens (or creates) a job and claims its lease; refuses one whose live lease another run holds. */
  openJob(options: OpenJobOptions): Promise<JobClaimHandle>;
  /** Jobs, newest first. */
  listJobs(options?: { limit?: number; after?: string }): Promise<JobRecord[]>;

  /** The batched writer of outcomes, audit records and outbox events. */
  writer(): Promise<OutcomeWriter>;

  /** Every audit record matching `filter`, in chain order, streamed. */
  auditRecords(filter?: AuditFilter): AsyncIterable<AuditRecord>;
  /** Walks the whole chain from genesis, in one snapshot; `anchor`: a head hash kept elsewhere. */
  verifyAudit(options?: { anchor?: string | undefined }): Promise<VerifyResult>;

  /**
   * Up to `limit` events for the webhook with this URL fingerprint, in id order, claimed by `owner` for
   * `leaseMs`: events no other owner holds an unexpired claim on (its own claims are returned again).
   */
  claimOutbox(
    urlSha256: string,
    options: {
      limit: number;
      owner: string;
      leaseMs: number;
      /** Only events with a greater id: those `owner` posted and acked meanwhile are not claimed again. */
      after?: number | undefined;
    },
  ): Promise<OutboxEvent[]>;
  /** Gives up `owner`'s claims: its events not yet deleted are free for any deliverer at once. */
  releaseOutbox(owner: string): Promise<void>;
  /** Deletes delivered events (ids from `claimOutbox`). */
  ackOutbox(ids: readonly number[]): Promise<void>;
  /** Events waiting for this URL, and for any other URL. */
  countOutbox(urlSha256: string): Promise<{ mine: number; others: number }>;

  createApiKey(key: Omit<ApiKeyRecord, 'createdAt' | 'revokedAt' | 'lastUsedAt'>): Promise<ApiKeyRecord>;
  /** The key with this hash, revoked or not; undefined when none. */
  findApiKey(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** True when a key was revoked now; false when it was already revoked or does not exist. */
  revokeApiKey(id: string): Promise<boolean>;
  /** Records that the key was used at `at` (ISO 8601); an earlier time than the one kept changes nothing. */
  markApiKeyUsed(id: string, at: string): Promise<void>;

  /**
   * Records a new service job. When it carries an Idempotency-Key that a job of the same API key was
   * created with already, nothing is written and that job is returned instead (one of two concurrent
   * requests with the same key wins); otherwise the job given is returned.
   */
  createServiceJob(job: ServiceJobRecord): Promise<ServiceJobRecord>;
  /**
   * Sets a service job's state and progress (and its `updatedAt`); false when there is no such job, or
   * when `from` is given and the job's state is not one of them (nothing is written): replicas that race
   * to start, end or cancel a job never overwrite one another's final state.
   */
  updateServiceJob(id: string, update: ServiceJobUpdate): Promise<boolean>;
  getServiceJob(id: string): Promise<ServiceJobRecord | undefined>;
  /** The job an API key created with this Idempotency-Key; undefined when none. */
  findServiceJobByIdempotencyKey(keyId: string, key: string): Promise<ServiceJobRecord | undefined>;
  /** Service jobs, newest first (the order they were created in, reversed), filtered, one page. */
  listServiceJobs(filter: ServiceJobFilter): Promise<ServiceJobRecord[]>;
  /** How many service jobs there are in each state (states with none are left out). */
  countServiceJobs(): Promise<Record<string, number>>;

  /**
   * Writes a service job's chunks (once, when the job is created; a chunk that exists is left as it is).
   * Nothing of a chunk is a secret: targets are session ids and the fields the service accepts.
   */
  addJobChunks(jobId: string, chunks: readonly JobChunkInput[]): Promise<void>;
  /**
   * Claims one unfinished chunk for `owner` for `leaseMs` (on the store's clock): a chunk nobody holds, or
   * whose claim expired, of a service job whose state is `queued` or `running`, oldest job first, then by
   * chunk number. Two owners never get the same chunk while a claim holds. Undefined when none is free.
   * `jobs`: only chunks of these jobs; `tenants`: only chunks of jobs of these tenants (undefined: any).
   */
  claimJobChunk(options: ChunkClaimOptions): Promise<ClaimedJobChunk | undefined>;
  /**
   * Extends `owner`'s claim and appends `outcomes` (JSON Lines, possibly empty) to what the chunk holds.
   * False when `owner` no longer holds the claim (it expired and another owner took it): stop the chunk.
   */
  heartbeatJobChunk(
    jobId: string,
    chunkNo: number,
    options: { owner: string; leaseMs: number; outcomes: string },
  ): Promise<boolean>;
  /**
   * Marks the chunk finished, appending the last `outcomes` and recording `error` (a fatal failure of its
   * run, or null), and gives up the claim. False when `owner` no longer held it (nothing is written).
   */
  finishJobChunk(
    jobId: string,
    chunkNo: number,
    options: { owner: string; outcomes: string; error: { code: string; message: string } | null },
  ): Promise<boolean>;
  /** Gives up `owner`'s claims, appending nothing: the chunks are free for any owner at once. */
  releaseJobChunks(owner: string): Promise<void>;
  /**
   * Puts back a chunk `owner` claimed and never ran: free at once, owned by nobody, its claim not counted
   * (the next owner does not take it for a chunk started before). False when `owner` no longer held it.
   */
  giveBackJobChunk(jobId: string, chunkNo: number, owner: string): Promise<boolean>;
  /** Marks every chunk of the job unfinished again (a failed or cancelled job resumed); keeps their outcomes. */
  reopenJobChunks(jobId: string): Promise<void>;
  jobChunkSummary(jobId: string): Promise<JobChunkSummary>;
  /** The outcomes the job's chunks hold, as JSON Lines, chunk by chunk in order. */
  jobChunkOutcomes(jobId: string): AsyncIterable<string>;
  /**
   * Counts by outcome over the ledgers of these jobs (each chunk runs as a ledger job of its own), with
   * `verified` and the error codes: one row per session, its latest outcome.
   */
  ledgerCounts(jobIds: readonly string[]): Promise<LedgerCounts>;

  close(): Promise<void>;
}

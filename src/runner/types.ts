/**
 * A job as a library object: what it is (`JobSpec`, serialisable, validated once by `spec.ts`'s schema),
 * what it needs that is not serialisable (`Credentials`, `JobDeps`), and the handle `startJob` returns.
 * No module here names a CLI flag or reads `process.env`: the CLI and the service build the spec and the
 * credentials.
 */
import type { BulkSummary, BulkTarget } from '../reset/bulk.js';
import type { ResetOutcome } from '../reset/outcome.js';
import type { WebhookStats } from '../sinks/webhook.js';
import type { TokenProvider } from '../transports/auth/token-provider.js';
import type { TransportSpec } from '../transports/create.js';

export interface JobSpec extends TransportSpec {
  plan: { keepHistory: boolean; keepVariables: boolean; keepNlu: boolean; flowOnly: boolean };
  maxDurationSec: number;
  pipeline: TransportSpec['pipeline'] & {
    /** The most resets in flight, and the first limit; unset: the limit adapts from 16 up to 1,024. */
    concurrency?: number | undefined;
    /** Keep `concurrency` in flight whatever the latency, instead of adapting below it. */
    fixedConcurrency?: boolean | undefined;
    verify: boolean;
    verifyTimeoutSec: number;
    /** Sessions in a row that could not reach the engine before the run stops (0: never). */
    maxUnreachable: number;
  };
  flowControl: {
    /** SEND frames per second at most; undefined: no ceiling (REST: Cognigy's SaaS ceiling). */
    rate?: number | undefined;
    /** Send at `rate` exactly instead of adapting to the engine. */
    fixed: boolean;
  };
  /** Names a resumable job; undefined: a one-off run (still audited). */
  jobId?: string | undefined;
  /**
   * The ledger job the run opens and records its outcomes in, when it is not `jobId`: a slice of a
   * larger job (a service job's chunk) keeps a ledger of its own, while its audit records, events and
   * metrics name `jobId`. Needs `jobId`. @default jobId
   */
  ledgerId?: string | undefined;
  /** Why: recorded in each audit record. */
  reason?: string | null | undefined;
  /** Who asks: `os:<user>`, `principal:<name>` or `key:<id>`. */
  actor: string;
  audit: boolean;
  sinks: {
    webhook?: { url: string; batch: number; timeoutSec: number } | undefined;
  };
  dryRun: boolean;
  /**
   * A stable name of the engine, kept in the job's settings instead of its URL, so that a job resumes
   * against an engine whose URL changes between runs (a service's in-process emulator). @default its URL
   */
  engine?: string | undefined;
  /** The selector that chose the job's sessions: each audit record names it, as the CLI's do. */
  selector?: SelectorSpec | undefined;
}

/** A selector in a job spec: exactly one of `flow`, `endpoint`, `node`; where its OData data is read. */
export interface SelectorSpec {
  flow?: string | undefined;
  endpoint?: string | undefined;
  node?: string | undefined;
  /** Inclusive, RFC 3339. */
  since?: string | undefined;
  /** Exclusive, RFC 3339. */
  until?: string | undefined;
  /** At most this many sessions. */
  limit?: number | undefined;
  /** The OData endpoint (its key comes from `Credentials.odataKey`). */
  odataUrl: string;
  /** The REST API, which an `endpoint` selector reads (with `Credentials.apiKey`). */
  apiUrl?: string | undefined;
}

/** A job's sessions. */
export interface JobTargets {
  /** Known up front for arguments and regular files. */
  total?: number | undefined;
  /** Batches in input order; `stop` closes the input, even in the middle of a read. */
  batches(stop: AbortSignal): AsyncIterable<readonly BulkTarget[]> | Iterable<readonly BulkTarget[]>;
}

/** Secrets a job needs, and the list of strings to scrub from everything it writes. */
export interface Credentials {
  /** The runtime token or REST bearer source; undefined for cognigy-socket or an API key. */
  tokens(): TokenProvider | undefined;
  /** REST: an API key (sent as X-API-Key). */
  apiKey?: string | undefined;
  /** cognigy-socket: the endpoint's URLToken. */
  urlToken?: string | undefined;
  /** The webhook's bearer token. */
  webhookToken?: string | undefined;
  /** The OData key a selector reads with. */
  odataKey?: string | undefined;
  /** Every secret above and any other the caller holds: never written anywhere. */
  secrets(): string[];
}

export interface JobCounts {
  done: number;
  reset: number;
  failed: number;
  skipped: number;
}

export interface JobStatus {
  jobId: string | null;
  state: 'running' | 'stopping' | 'done';
  counts: JobCounts;
  /** Targets known so far (the input's size when it is known up front). */
  total: number | undefined;
  /** Sessions finished per second over the last few seconds. */
  rate: number;
  /** Seconds left at that rate; undefined when the total or the rate is unknown. */
  etaSec: number | undefined;
  /** The flow controller's current pace, SEND frames per second. */
  pace: number | undefined;
  /** The flow controller's name: jobs on one engine and tenant share one (`fc-N`); undefined for a dry run. */
  controller: string | undefined;
  /** The flow controller as the summary shows it (`mode`, `rate`, `ceiling`, `refused`, `cuts`), and the job's in-flight bound. */
  flowControl: Record<string, unknown> & { inFlightLimit: number };
  /** The in-flight limit now. */
  depth: number | undefined;
  /** SEND frames the engine refused as over its rate, so far (undefined: nothing paced, a dry run). */
  refused: number | undefined;
}

export type JobEvent =
  | {
      type: 'outcome';
      jobId: string | null;
      index: number;
      outcome: ResetOutcome;
      target: BulkTarget;
      /** A dry run's directive (or the transport's requests) for a valid target. */
      directive?: unknown;
    }
  | {
      type: 'log';
      jobId: string | null;
      level: 'debug' | 'info' | 'warn';
      message: string;
      fields: Record<string, unknown>;
    }
  | { type: 'done'; jobId: string | null; summary: JobSummary };

export interface JobSummary extends BulkSummary {
  jobId: string | null;
  dryRun: boolean;
  transport: string;
  cleared: string[];
  notCleared: string[];
  /** How sends were paced, and how many the engine refused. */
  flowControl: Record<string, unknown>;
  /** The webhook sink's figures, when there is one. */
  analytics: WebhookStats | undefined;
  /** A teardown step that failed after the run (a metrics file, the job's finish): reported after the summary. */
  lateError: unknown;
}

export interface JobHandle {
  readonly jobId: string | null;
  status(): JobStatus;
  /** Every outcome and event, in order; a slow consumer holds back new sessions (back-pressure). */
  events(): AsyncIterable<JobEvent>;
  /** Takes no new session; those in flight finish. */
  stop(): void;
  /** Aborts the resets in flight too. */
  abort(): void;
  /**
   * Finishes and releases one ledger job of a run whose input spans several (`StartJobDeps.ledgerOf`),
   * once every session of it has an outcome; a no-op for any other run.
   */
  settleLedger(id: string, complete: boolean): Promise<void>;
  /**
   * How many processes share the engine's cap now, this one included, when the caller knows (a service's
   * replicas): an adaptive rate takes its share at once instead of finding it by refusals.
   */
  setPeers(peers: number): void;
  /** The summary, once everything is durable and closed. */
  readonly done: Promise<JobSummary>;
}

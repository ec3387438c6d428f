/** The public API of cognigy-reset. This file only re-exports. */
export {
  createResetter,
  type Resetter,
  type ResetterOptions,
  type ResetManyOptions,
} from './reset/resetter.js';
export {
  ResetPipeline,
  type AnalyticsCallback,
  type PipelineOptions,
  type ResetCallOptions,
} from './reset/pipeline.js';
export {
  runBulk,
  type BulkOptions,
  type BulkSource,
  type BulkSummary,
  type BulkTarget,
  type JobLedger,
} from './reset/bulk.js';
export { planReset, LAYERS, type Layer, type PlanOptions, type ResetPlan } from './model/plan.js';
export { compileDirective, type CompiledDirective } from './protocol/encode.js';
export { verdictFor, type Verdict } from './reset/verify.js';
export { outcomeLine, type ResetOutcome, type OutcomeKind } from './reset/outcome.js';
export { type AnalyticsErrorMessage, CHANNELS, type DoneMessage } from './reset/events.js';
export { DEFAULT_RETRY_POLICY, retryDelay, shouldRetry, type RetryPolicy } from './model/retry-policy.js';
export { RuntimeWsTransport, type RuntimeWsOptions } from './transports/runtime-ws/transport.js';
export { runtimeDialUrl } from './transports/runtime-ws/url.js';
export type {
  Transport,
  RequestOptions,
  PrepareOptions,
  PreparedReset,
  ResetOptions,
  ResetExchange,
  ResetAnswer,
  ReadBack,
  SessionTarget,
} from './transports/transport.js';
export { StaticTokenProvider, type TokenProvider } from './transports/auth/token-provider.js';
export { OAuth2TokenProvider, oauth2FromEnv, type OAuth2Options } from './transports/auth/oauth2.js';
export {
  CognigyResetError,
  ERROR_CATALOGUE,
  isCognigyResetError,
  httpStatusOf,
  isMarked,
  type ErrorCode,
  type ErrorKind,
  type ErrorMark,
} from './errors.js';
export * from './protocol/index.js';
export * from './select/index.js';
export {
  CognigyRestClient,
  DEFAULT_REST_RATE_PER_SEC,
  type CognigyRestOptions,
  type RestTarget,
} from './transports/cognigy-rest/client.js';
export { startJob, type JobTargets, type StartJobDeps } from './runner/start-job.js';
export { jobSpec, JOB_SPEC_SCHEMA } from './runner/spec.js';
export {
  describeSpecSelector,
  selectorTargets,
  selectRows,
  type SelectRowsOptions,
} from './runner/select-targets.js';
export type {
  Credentials,
  JobEvent,
  JobHandle,
  JobSpec,
  JobStatus,
  JobSummary,
  SelectorSpec,
} from './runner/types.js';
export { createTransport, type TransportSpec, type TransportCredentials } from './transports/create.js';
export { openStore, createSeenIds, type OpenStoreOptions } from './store/index.js';
export type * from './store/port.js';
export { parseTargets, countTargetsInFile, type TargetBatches } from './targets/rows.js';
export { readLineBatches } from './targets/lines.js';
export { ResetMetrics } from './sinks/prometheus.js';

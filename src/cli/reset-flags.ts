/** `reset`'s flags as commander parses them (declared in `commands/reset.ts`). */
import type { LogLevel } from './logger.js';
import type { SelectorFlags } from './selector-options.js';

/** The selector's flags (`--flow`, `--since`, …) come from `selector-options.ts`, shared with `sessions list`. */
export interface ResetFlags extends SelectorFlags {
  url?: string;
  tenant?: string;
  bot?: string;
  tokenFile?: string;
  fromFile?: string;
  maxDuration: number;
  reason?: string;
  concurrency?: number;
  connections?: number;
  rate?: number;
  fixedRate: boolean;
  fixedConcurrency: boolean;
  dryRun: boolean;
  verify: boolean;
  verifyTimeout: number;
  ackTimeout: number;
  maxAttempts: number;
  maxUnreachable: number;
  job?: string;
  store?: string;
  state?: string;
  json: boolean;
  keepHistory: boolean;
  keepVariables: boolean;
  keepNlu: boolean;
  flowOnly: boolean;
  allowInsecure: boolean;
  progress: boolean;
  progressInterval: number;
  logLevel: LogLevel;
  audit: boolean;
  metricsPort?: number;
  metricsHost: string;
  metricsFile?: string;
  analyticsUrl?: string;
  analyticsTokenFile?: string;
  analyticsTimeout: number;
  analyticsBatch: number;
  transport: 'runtime-ws' | 'cognigy-rest' | 'cognigy-socket';
  endpointUrl?: string;
  firstText?: string;
  firstData?: string;
  apiUrl?: string;
  defaultContextKeys?: string;
  expect?: number;
  expectMargin: number;
  yes: boolean;
}

/**
 * `cognigy-reset reset`: one session or a million, validated, acknowledged and verified.
 * This file parses and wires; the pipeline lives in `src/reset/`, exit codes in `exit-codes.ts`.
 */
import { readFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { resolve } from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Command, Option } from 'commander';
import { CognigyResetError, type ErrorCode, isCognigyResetError } from '../../errors.js';
import {
  checkResetDirective,
  DEFAULT_WS_URL,
  MAX_DURATION_MAX_SEC,
  MAX_DURATION_MIN_SEC,
} from '../../protocol/index.js';
import { createResetter } from '../../reset/resetter.js';
import { CHANNELS } from '../../reset/events.js';
import { outcomeLine, type ResetOutcome } from '../../reset/outcome.js';
import { DEFAULT_RETRY_POLICY } from '../../reset/retry-policy.js';
import {
  createSeenIds,
  DEFAULT_LEASE_MS,
  type JobClaimHandle,
  openStore,
  type OutcomeWriter,
  type Store,
} from '../../store/index.js';
import { type AuditContext, resolveActor } from '../../audit/record.js';
import { checkMetricsFile, ResetMetrics } from '../../sinks/prometheus.js';
import {
  DEFAULT_WEBHOOK_BATCH,
  outboxEvent,
  storeReason,
  WebhookDeliverer,
  type WebhookStats,
} from '../../sinks/webhook.js';
import type { DoneMessage, PaceCutMessage } from '../../reset/events.js';
import { checkedUrl } from '../../util/loopback.js';
import type { Server } from 'node:http';
import { type BulkSummary, type BulkTarget, DEFAULT_MAX_UNREACHABLE } from '../../reset/bulk.js';
import { CognigyRestTransport } from '../../transports/cognigy-rest/transport.js';
import { CognigySocketTransport } from '../../transports/cognigy-socket/transport.js';
import { OAuth2TokenProvider } from '../../transports/auth/oauth2.js';
import { StaticTokenProvider } from '../../transports/auth/token-provider.js';
import type { Transport } from '../../transports/transport.js';
import { oauth2FromEnv } from '../../transports/auth/oauth2.js';
import { redactUrl } from '../../util/redact.js';
import {
  errorLine,
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_OK,
  EXIT_USAGE,
  exitCodeFor,
  exitCodeForCode,
} from '../exit-codes.js';
import { inputSource } from '../input.js';
import { refuseOutputCollisions } from '../output-paths.js';
import { stdoutGone } from '../stdout-gone.js';
import type { Logger } from 'pino';
import { createLogger, LOG_LEVELS, type LogLevel } from '../logger.js';
import { integerIn, numberIn, textUpTo } from '../parse.js';
import { printableProblem, safeJson, terminalSafe } from '../../util/printable.js';
import { pacerFor, paceSummary } from '../pace.js';
import { createProgress } from '../progress.js';
import { humanSummary } from '../summary.js';
import { LineWriter } from '../line-writer.js';
import { checkConfirmed, reasonWithSelector, selectForReset, type Selection } from '../select-for-reset.js';
import { addSelectorOptions, hasSelector, type SelectorFlags } from '../selector-options.js';

/** The selector's flags (`--flow`, `--since`, …) come from `selector-options.ts`, shared with `sessions list`. */
interface ResetFlags extends SelectorFlags {
  url?: string;
  tenant?: string;
  bot?: string;
  tokenFile?: string;
  fromFile?: string;
  maxDuration: number;
  reason?: string;
  concurrency: number;
  connections: number;
  rate?: number;
  fixedRate: boolean;
  dryRun: boolean;
  verify: boolean;
  verifyTimeout: number;
  ackTimeout: number;
  maxAttempts: number;
  maxUnreachable: number;
  job?: string;
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

export const DEFAULT_STATE_FILE = 'cognigy-reset.sqlite';

/** A setting from its flag or, failing that, its environment variable; missing is a usage error. */
function setting(flag: string | undefined, env: NodeJS.ProcessEnv, name: string, missing: string): string {
  const value = flag ?? env[name];
  if (value === undefined || value === '') {
    throw new CognigyResetError('CR_ERR_OPT_MISSING', `${missing} (or ${name})`);
  }
  return value;
}

function parseFirstData(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', 'Expected --first-data to be JSON', {
      field: '--first-data',
      cause,
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', 'Expected --first-data to be a JSON object', {
      field: '--first-data',
    });
  }
  return value as Record<string, unknown>;
}

/** A secret read from a file named by `option`, trimmed; an empty file is refused with `emptyCode`. */
function readSecretFile(path: string, option: string, emptyCode: ErrorCode): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `cannot read ${option} ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      { field: option, cause },
    );
  }
  const secret = text.trim();
  if (secret === '') throw new CognigyResetError(emptyCode, `${option} ${path} is empty`, { field: option });
  return secret;
}

function readToken(flags: ResetFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.tokenFile !== undefined)
    return readSecretFile(flags.tokenFile, '--token-file', 'CR_ERR_AUTH_NO_TOKEN');
  const token = env['COGNIGY_API_TOKEN'];
  return token === undefined || token === '' ? undefined : token;
}

/**
 * The analytics tracker's bearer token: `--analytics-token-file`, else env `COGNIGY_ANALYTICS_TOKEN`. It
 * goes into a header, so it must be one run of visible characters; the error never shows it.
 */
function readAnalyticsToken(flags: ResetFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.analyticsTokenFile !== undefined && flags.analyticsUrl === undefined) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', '--analytics-token-file needs --analytics-url', {
      field: '--analytics-token-file',
    });
  }
  if (flags.analyticsUrl === undefined) return undefined;
  const source =
    flags.analyticsTokenFile !== undefined ? '--analytics-token-file' : 'COGNIGY_ANALYTICS_TOKEN';
  const token =
    flags.analyticsTokenFile !== undefined
      ? readSecretFile(flags.analyticsTokenFile, '--analytics-token-file', 'CR_ERR_OPT_INVALID')
      : env['COGNIGY_ANALYTICS_TOKEN'];
  if (token === undefined || token === '') return undefined;
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected the analytics token from ${source} to be visible ASCII without spaces (it is sent as a bearer token); it is not (value not shown)`,
      { field: source },
    );
  }
  return token;
}

/** The run's `analytics:` line on stderr: what went out, what waits, and why it waits. */
function analyticsLine(stats: WebhookStats): string {
  const why =
    stats.stopped !== undefined
      ? ` (${stats.stopped})`
      : stats.lastFailure !== undefined
        ? ` (last failure: ${stats.lastFailure})`
        : '';
  const waiting =
    stats.pending === null
      ? `; the outbox could not be read${why}`
      : stats.pending > 0
        ? `; ${stats.pending} wait in the outbox for the next run${why}`
        : '';
  const n = stats.otherUrls ?? 0;
  const others =
    n > 0
      ? `; ${n} ${n === 1 ? 'event' : 'events'} for another webhook URL ${n === 1 ? 'waits' : 'wait'} too (a run with that --analytics-url delivers them)`
      : '';
  return `${terminalSafe(`analytics: ${stats.delivered} events delivered${waiting}${others}`)}\n`;
}

export function resetCommand(): Command {
  const command = new Command('reset')
    .description(
      'reset sessions: validate, send, acknowledge, verify (ids as arguments, TARGET_SESSION_ID, or --from-file rows)',
    )
    .argument('[sessionId...]', 'session ids (none given: TARGET_SESSION_ID)')
    .addOption(
      new Option('--transport <name>', 'the engine interface to reset through')
        .choices(['runtime-ws', 'cognigy-rest', 'cognigy-socket'])
        .default('runtime-ws'),
    )
    .option('--api-url <url>', 'Cognigy REST API base for --transport cognigy-rest (env COGNIGY_API_URL)')
    .option(
      '--endpoint-url <url>',
      'Socket endpoint for --transport cognigy-socket (env COGNIGY_ENDPOINT_URL)',
    )
    .option('--first-text <text>', 'with cognigy-socket: the first input of the restarted Flow')
    .option('--first-data <json>', 'with cognigy-socket: data (a JSON object) sent with the first input')
    .option(
      '--default-context-keys <keys>',
      "keys of the Flow's default context (comma-separated): allowed after a REST context reset (unset: each Flow's default is what its first reset in the run returned)",
    )
    .option('--url <url>', `engine base or ws URL (env COGNIGY_WS_URL; default ${DEFAULT_WS_URL})`)
    .option('--tenant <id>', 'tenant id (env COGNIGY_TENANT_ID)')
    .option('--bot <id>', 'bot id (env COGNIGY_BOT_ID)')
    .option('--token-file <path>', 'read the token from this file (else env COGNIGY_API_TOKEN)')
    .option('--from-file <path>', 'one session id a line; "-" is stdin; streamed')
    .option('--max-duration <sec>', 'maxDurationSec of each directive', integerIn(-1e9, 1e9), 900)
    .option('--reason <text>', 'why: recorded in each audit record (at most 500 characters)', textUpTo(500))
    .option('--concurrency <n>', 'resets in flight', integerIn(1, 10_000), 16)
    .option('--connections <n>', 'WebSocket connections in the pool', integerIn(1, 256), 4)
    .option(
      '--rate <perSecond>',
      'SEND frames per second at most: the adaptive rate never passes it',
      numberIn(0, 1e6, { exclusiveMin: true }),
    )
    .option(
      '--fixed-rate',
      'send at --rate exactly (a token bucket) instead of adapting to the engine',
      false,
    )
    .option('--dry-run', 'validate and print each directive; open no connection, send nothing', false)
    .option('--no-verify', 'skip the state check; outcomes say verified: false')
    .option(
      '--verify-timeout <sec>',
      'how long to poll a busy flow before failing it',
      numberIn(0, 86_400, { exclusiveMin: true }),
      30,
    )
    .option(
      '--ack-timeout <sec>',
      'deadline of each acknowledgement',
      numberIn(0, 3600, { exclusiveMin: true }),
      10,
    )
    .option(
      '--max-attempts <n>',
      'attempts per session, the first included',
      integerIn(1, 100),
      DEFAULT_RETRY_POLICY.maxAttempts,
    )
    .option(
      '--max-unreachable <n>',
      'stop the run once this many sessions in a row could not reach the engine (0: never)',
      integerIn(0, 1_000_000),
      DEFAULT_MAX_UNREACHABLE,
    )
    .option('--keep-history', 'do not clear the conversation history', false)
    .option('--keep-variables', 'do not clear session variables', false)
    .option('--keep-nlu', 'do not clear the NLU context', false)
    .option('--flow-only', 'reset the flow position only', false)
    .option('--job <id>', 'name a bulk job; the same command again resumes it', textUpTo(JOB_ID_MAX))
    .option('--state <path>', `SQLite state file (env COGNIGY_RESET_STATE; default ./${DEFAULT_STATE_FILE})`)
    .option('--json', 'JSON Lines on stdout: one object per session, then {"summary":{...}}', false)
    .option('--no-audit', 'do not write the audit log (it is on by default)')
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics on this port while the run lasts (0: any free port)',
      integerIn(0, 65535),
    )
    .option('--metrics-host <host>', 'address of the metrics endpoint', '127.0.0.1')
    .option('--metrics-file <path>', 'write the Prometheus metrics text here at the end')
    .option('--analytics-url <url>', 'POST each outcome to this webhook (durable outbox in the state file)')
    .option(
      '--analytics-token-file <path>',
      'send the token in this file to the webhook as a bearer token (else env COGNIGY_ANALYTICS_TOKEN)',
    )
    .option(
      '--analytics-timeout <sec>',
      'how long to keep delivering webhook events after the run',
      numberIn(0, 3600),
      10,
    )
    .option(
      '--analytics-batch <n>',
      'webhook events per POST (lower it for a tracker that limits body size)',
      integerIn(1, 10_000),
      DEFAULT_WEBHOOK_BATCH,
    )
    .option('--allow-insecure', 'allow plain ws:// to a host that is not loopback', false)
    .option('--no-progress', 'no progress on stderr')
    .option(
      '--progress-interval <sec>',
      'seconds between progress lines when stderr is not a terminal',
      numberIn(0, 3600, { exclusiveMin: true }),
      5,
    )
    .addOption(
      new Option('--log-level <level>', 'log level of the JSON logs on stderr')
        .choices(LOG_LEVELS)
        .default('warn'),
    )
    .action(async (ids: string[], flags: ResetFlags) => {
      process.exitCode = await runReset(ids, flags, process.env);
    });
  return addSelectorOptions(command, { withApiUrl: false })
    .option(
      '--expect <n>',
      'with a selector: send only if it matches N sessions (± --expect-margin)',
      integerIn(0, Number.MAX_SAFE_INTEGER),
    )
    .option(
      '--expect-margin <percent>',
      'how far the count may be from --expect, in percent of it',
      numberIn(0, 100),
      5,
    )
    .option('--yes', 'with a selector: send to every session it matches, whatever the count', false);
}

const JOB_ID_MAX = 128;
export const STALLED =
  'the run stopped making progress: nothing it waited on could still happen (resets in flight are not counted)';
const IDENTIFIER_MAX = 256;

/**
 * A tenant or bot id from its option or its variable ('' when neither is set): printable, at most 256
 * characters. It goes into every audit record and into the engine's URL.
 */
function identifier(
  flag: string | undefined,
  option: string,
  env: NodeJS.ProcessEnv,
  variable: string,
): string {
  const value = flag ?? env[variable] ?? '';
  const problem = value === '' ? undefined : printableProblem(value, IDENTIFIER_MAX);
  if (problem === undefined) return value;
  const field = flag === undefined ? variable : option;
  throw new CognigyResetError('CR_ERR_OPT_INVALID', `${field}: ${problem}`, { field });
}

async function runReset(ids: string[], flags: ResetFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const out = new LineWriter(process.stdout, stdoutGone.signal);
  const url = flags.url ?? env['COGNIGY_WS_URL'] ?? DEFAULT_WS_URL;
  const actor = resolveActor(env);
  const tenant = identifier(flags.tenant, '--tenant', env, 'COGNIGY_TENANT_ID');
  const botId = identifier(flags.bot, '--bot', env, 'COGNIGY_BOT_ID');
  const rest = flags.transport === 'cognigy-rest';
  const socket = flags.transport === 'cognigy-socket';
  const apiKey = rest && !flags.dryRun ? env['COGNIGY_API_KEY'] || undefined : undefined;
  // Read in a dry run too: the endpoint URL may end in the URLToken, which the printed endpoint leaves out.
  const urlToken = socket ? env['COGNIGY_URL_TOKEN'] || undefined : undefined;
  const staticToken =
    flags.dryRun || socket || (rest && apiKey !== undefined) ? undefined : readToken(flags, env);
  const oauth2 = flags.dryRun || socket ? undefined : oauth2FromEnv(env, staticToken);
  const secrets = new Set<string>();
  if (staticToken !== undefined) secrets.add(staticToken);
  if (apiKey !== undefined) secrets.add(apiKey);
  if (urlToken !== undefined) secrets.add(urlToken);
  if (oauth2 !== undefined) {
    secrets.add(oauth2.clientSecret);
    if (oauth2.refreshToken !== undefined) secrets.add(oauth2.refreshToken);
  }
  const log = createLogger(flags.logLevel, () => [...secrets]);

  if (!flags.dryRun) {
    if (socket && urlToken === undefined) {
      throw new CognigyResetError(
        'CR_ERR_AUTH_NO_TOKEN',
        'no URLToken: set COGNIGY_URL_TOKEN for --transport cognigy-socket',
      );
    }
    if (!rest && !socket && (tenant === '' || botId === '')) {
      throw new CognigyResetError(
        'CR_ERR_OPT_MISSING',
        'tenant and bot are required: --tenant/--bot or COGNIGY_TENANT_ID/COGNIGY_BOT_ID',
      );
    }
    if (!socket && staticToken === undefined && oauth2 === undefined && apiKey === undefined) {
      throw new CognigyResetError(
        'CR_ERR_AUTH_NO_TOKEN',
        rest
          ? 'no REST credentials: set COGNIGY_API_KEY, or configure OAuth2 (COGNIGY_OAUTH_TOKEN_URL, _CLIENT_ID, _CLIENT_SECRET)'
          : 'no token: set COGNIGY_API_TOKEN, pass --token-file PATH, or configure OAuth2 (COGNIGY_OAUTH_TOKEN_URL, _CLIENT_ID, _CLIENT_SECRET)',
      );
    }
  }
  // Validate the directive's settings once, before any input is read or anything is dialled.
  const probe = checkResetDirective({
    type: 'SEND',
    sessionId: 'probe',
    stateClearMatrix: { flowState: 'RESET' },
    contextWipeDirective: { clearVariables: true, clearHistory: true },
    maxDurationSec: flags.maxDuration,
    timestamp: new Date().toISOString(),
  });
  if (probe !== undefined) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `--max-duration: ${probe.message} (the engine accepts ${MAX_DURATION_MIN_SEC}–${MAX_DURATION_MAX_SEC})`,
      { field: '--max-duration', cause: probe },
    );
  }
  let selection: Selection | undefined;
  if (hasSelector(flags)) {
    if (ids.length > 0 || flags.fromFile !== undefined) {
      throw new CognigyResetError(
        'CR_ERR_OPT_INVALID',
        'give sessions by a selector (--flow, --endpoint, --node) or as ids / --from-file, not both',
        { field: '--from-file' },
      );
    }
    if (flags.job !== undefined) {
      // A job resumes by input position; a selector's list can change between runs (new analytics data).
      throw new CognigyResetError(
        'CR_ERR_OPT_INVALID',
        'a selector cannot drive a resumable --job (its list can change between runs): write the list with `sessions list > FILE`, then `reset --from-file FILE --job ID`',
        { field: '--job' },
      );
    }
    selection = await selectForReset(flags, env, log, secrets);
    if (flags.dryRun) return printSelection(selection, flags.json, out);
    checkConfirmed(selection, flags);
  }
  // Where the chosen transport goes: --url, --api-url or --endpoint-url (each also from its env variable).
  const targetUrl = rest
    ? setting(flags.apiUrl, env, 'COGNIGY_API_URL', '--transport cognigy-rest needs --api-url')
    : socket
      ? setting(
          flags.endpointUrl,
          env,
          'COGNIGY_ENDPOINT_URL',
          '--transport cognigy-socket needs --endpoint-url',
        )
      : url;
  let transport: Transport | undefined;
  if (rest) {
    transport = new CognigyRestTransport({
      apiUrl: targetUrl,
      ...(apiKey === undefined ? {} : { apiKey }),
      ...(apiKey === undefined && !flags.dryRun
        ? {
            tokens:
              oauth2 !== undefined
                ? new OAuth2TokenProvider({ allowInsecure: flags.allowInsecure, ...oauth2 })
                : new StaticTokenProvider(staticToken!),
          }
        : {}),
      ...(flags.dryRun ? { apiKey: 'unused-in-dry-run' } : {}),
      allowInsecure: flags.allowInsecure,
      timeoutMs: flags.ackTimeout * 1000,
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: flags.maxAttempts },
      ...(flags.rate === undefined ? {} : { ratePerSec: flags.rate }),
      // Unset, the transport learns each Flow's default from its first reset in the run.
      defaultContextKeys:
        flags.defaultContextKeys === undefined
          ? undefined
          : flags.defaultContextKeys
              .split(',')
              .map((k) => k.trim())
              .filter((k) => k !== ''),
    });
  }

  if (socket) {
    transport = new CognigySocketTransport({
      endpointUrl: targetUrl,
      urlToken: urlToken ?? 'unused-in-dry-run',
      text: flags.firstText,
      data: parseFirstData(flags.firstData),
      allowInsecure: flags.allowInsecure,
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: flags.maxAttempts },
    });
  }

  const resetter = createResetter({
    ...(transport === undefined ? {} : { transport }),
    url,
    tenant: tenant || 'dry-run',
    botId: botId || 'dry-run',
    ...(staticToken === undefined ? {} : { token: staticToken }),
    ...(oauth2 === undefined ? {} : { oauth2 }),
    ...(flags.dryRun && staticToken === undefined && oauth2 === undefined
      ? { token: 'unused-in-dry-run' }
      : {}),
    connections: flags.connections,
    allowInsecure: flags.allowInsecure,
    maxDurationSec: flags.maxDuration,
    ackTimeoutMs: flags.ackTimeout * 1000,
    verify: flags.verify,
    verifyTimeoutMs: flags.verifyTimeout * 1000,
    retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: flags.maxAttempts },
    pacer: flags.dryRun ? undefined : pacerFor(flags, targetUrl, tenant),
    plan: {
      keepHistory: flags.keepHistory,
      keepVariables: flags.keepVariables,
      keepNlu: flags.keepNlu,
      flowOnly: flags.flowOnly,
    },
  });
  const input = await inputSource(
    ids,
    selection?.path ?? flags.fromFile,
    env,
    process.stdin,
    resetter.transport.requiredFields(resetter.plan),
  );

  // Served before the state file opens: a port that cannot be served stops the run with nothing written.
  if (flags.metricsFile !== undefined) {
    checkMetricsFile(flags.metricsFile);
    // Checked whether or not this run opens the state file: it may hold earlier runs' audit log.
    refuseOutputCollisions(
      [{ option: '--metrics-file', path: flags.metricsFile }],
      resolve(flags.state ?? env['COGNIGY_RESET_STATE'] ?? DEFAULT_STATE_FILE),
      [
        { option: '--from-file', path: flags.fromFile ?? '-' },
        { option: '--token-file', path: flags.tokenFile ?? '' },
        { option: '--analytics-token-file', path: flags.analyticsTokenFile ?? '' },
      ].filter((input) => input.path !== '' && input.path !== '-'),
    );
  }
  let metricsServer: Server | undefined;
  const metrics =
    flags.metricsPort !== undefined || flags.metricsFile !== undefined ? new ResetMetrics() : undefined;
  if (metrics !== undefined && flags.metricsPort !== undefined) {
    try {
      const served = await metrics.serve(flags.metricsHost, flags.metricsPort);
      process.stderr.write(`metrics: ${served.url}\n`);
      metricsServer = served.server;
    } catch (err) {
      metrics.close();
      throw err;
    }
  }

  // The state file holds the audit log (on unless --no-audit), the job ledger and the analytics outbox.
  const audit = flags.audit && !flags.dryRun;
  const useState = !flags.dryRun && (audit || flags.job !== undefined || flags.analyticsUrl !== undefined);
  let db: Store | undefined;
  let job: JobClaimHandle | undefined;
  let writer: OutcomeWriter | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let webhook: WebhookDeliverer | undefined;
  let analytics: WebhookStats | undefined;
  if (flags.analyticsUrl !== undefined) {
    checkedUrl(flags.analyticsUrl, '--analytics-url', ['https', 'http'], flags.allowInsecure);
  }
  const analyticsToken = readAnalyticsToken(flags, env);
  if (analyticsToken !== undefined) secrets.add(analyticsToken);
  if (useState) {
    const statePath = resolve(flags.state ?? env['COGNIGY_RESET_STATE'] ?? DEFAULT_STATE_FILE);
    db = await openStore(statePath);
    try {
      // Before the job is claimed, and before anything is sent: a file SQLite opened read-only says so here.
      await db.checkWritable();
      if (flags.job !== undefined) {
        job = await db.openJob({
          jobId: flags.job,
          leaseMs: DEFAULT_LEASE_MS,
          settings: {
            transport: resetter.transport.name,
            // A Socket endpoint's path is its URLToken: the job keeps its origin only.
            url: redactUrl(targetUrl, { path: !socket }),
            tenant,
            botId,
            plan: resetter.plan.cleared,
            maxDurationSec: flags.maxDuration,
            verify: flags.verify,
          },
        });
        log.info({ jobId: flags.job, resumed: job.resumed, state: statePath }, 'job opened');
        if (job.takenOver !== undefined) {
          const { host, pid, since } = job.takenOver;
          log.warn(
            { jobId: flags.job, heldBy: { host, pid, since } },
            'job claimed by a run on another host, which cannot be checked: taken over',
          );
        }
        // The lease is extended while the run lasts; a run that lost it stops at once. A heartbeat that
        // could not be written is tried again at the next one.
        const claim = job;
        heartbeat = setInterval(() => {
          claim.heartbeat().catch((err: unknown) => {
            if (!isCognigyResetError(err) || err.code !== 'CR_ERR_STATE_JOB_LOST') {
              log.warn({ jobId: flags.job, err: (err as Error).message }, 'job lease not extended');
              return;
            }
            clearInterval(heartbeat);
            if (!halt.signal.aborted) halt.abort(err);
          });
        }, DEFAULT_LEASE_MS / 3).unref();
      }
      // Nothing is sent before the writer thread holds the state file open.
      writer = await db.writer();
    } catch (err) {
      clearInterval(heartbeat);
      await job?.release().catch(() => undefined);
      await db.close();
      throw err;
    }
    if (flags.analyticsUrl !== undefined) {
      let warned = false;
      webhook = new WebhookDeliverer(db, {
        url: flags.analyticsUrl,
        token: analyticsToken,
        batchSize: flags.analyticsBatch,
        // The first failure and a refusal are worth a warning; the retries after the first are detail.
        onDelivered: (events) => metrics?.analyticsDelivered(events),
        onFailure: ({ reason, retryable }) => {
          metrics?.analyticsFailed(retryable);
          const level = !retryable || !warned ? 'warn' : 'debug';
          warned = true;
          log[level](
            { reason, retryable },
            retryable
              ? 'analytics delivery failed; retrying'
              : 'analytics delivery stopped for this run: the events wait in the outbox',
          );
        },
      });
      const deliverer = webhook;
      const stateWriter = writer;
      // While the writer thread commits, accepted events are deleted in its batches (see removeVia).
      deliverer.removeVia(
        (ids) =>
          void stateWriter.ack(ids).catch((err: unknown) => deliverer.deliveryNotRecorded(storeReason(err))),
      );
      metrics?.watchAnalytics(() =>
        // The state file cannot be read: the summary says so.
        deliverer.countPending().catch(() => null),
      );
      webhook.start();
    }
  }
  const auditContext: AuditContext = {
    actor,
    reason:
      selection === undefined
        ? (flags.reason ?? null)
        : reasonWithSelector(flags.reason, selection.description),
    jobId: flags.job ?? null,
    tenant,
    botId,
    transport: resetter.transport.name,
    notCleared: resetter.plan.notClearable,
  };
  const persist =
    writer === undefined
      ? undefined
      : (outcome: ResetOutcome, index: number): Promise<void> => {
          const committed = writer.append({
            outcome,
            job: job === undefined ? undefined : { jobId: job.jobId, index },
            audit: audit ? auditContext : undefined,
            outbox:
              webhook === undefined
                ? undefined
                : outboxEvent(outcome, {
                    urlSha256: webhook.urlSha256,
                    jobId: flags.job ?? null,
                    tenant,
                    botId,
                  }),
          });
          if (webhook !== undefined)
            void committed.then(
              () => webhook.notify(),
              () => undefined,
            );
          return committed;
        };

  const stop = new AbortController();
  const abort = new AbortController();
  // Every reset in flight listens on these signals.
  setMaxListeners(0, stop.signal, abort.signal);
  const onSigint = (): void => {
    if (!stop.signal.aborted) {
      process.stderr.write('stopping: resets in flight finish; Ctrl-C again to abort them\n');
      stop.abort();
    } else abort.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // Nothing holds the event loop, yet the run has not settled: it never will. It ends here, with a coded
  // error and its summary, instead of Node's exit 13 with neither.
  const halt = new AbortController();
  const onBeforeExit = (): void => {
    if (halt.signal.aborted) return;
    halt.abort(new CognigyResetError('CR_ERR_CLI_STALLED', STALLED));
    abort.abort();
  };
  process.on('beforeExit', onBeforeExit);
  // Nobody reads the outcomes any more (`| head`): stop taking new sessions, as on a first Ctrl-C.
  const onStdoutGone = (): void => {
    if (stop.signal.aborted) return;
    process.stderr.write('stopping: stdout was closed; resets in flight finish\n');
    stop.abort();
  };
  if (stdoutGone.signal.aborted) onStdoutGone();
  else stdoutGone.signal.addEventListener('abort', onStdoutGone, { once: true });

  // A child logger for each reset, made only when its lines would be written.
  const onRetry = (message: unknown): void => {
    if (!log.isLevelEnabled('debug')) return;
    const { sessionId, ...rest } = message as { sessionId: string };
    log.child({ sessionId, jobId: flags.job }).debug(rest, 'retry');
  };
  const onDone = (message: unknown): void => {
    if (!log.isLevelEnabled('info')) return;
    const { outcome } = message as DoneMessage;
    const child = log.child({ sessionId: outcome.sessionId, jobId: flags.job, requestId: outcome.requestId });
    if (outcome.outcome === 'failed') {
      child.info(
        { code: outcome.error?.code, attempts: outcome.attempts, latencyMs: outcome.latencyMs },
        'reset failed',
      );
    } else {
      child.debug(
        {
          outcome: outcome.outcome,
          verified: outcome.verified,
          attempts: outcome.attempts,
          latencyMs: outcome.latencyMs,
        },
        'reset done',
      );
    }
  };
  const onPaceCut = (message: unknown): void => {
    if (!log.isLevelEnabled('debug')) return;
    const { sessionId, code, rate } = message as PaceCutMessage;
    log.child({ sessionId, jobId: flags.job }).debug({ code, rate: Math.round(rate) }, 'rate cut');
  };
  subscribe(CHANNELS.retry.name, onRetry);
  subscribe(CHANNELS.done.name, onDone);
  subscribe(CHANNELS.paceCut.name, onPaceCut);

  const progress = createProgress({
    stream: process.stderr,
    total: input.total,
    intervalMs: flags.progressInterval * 1000,
    enabled: flags.progress && !flags.dryRun,
    pace: () => resetter.pipeline.pacer?.rate(),
  });
  const counts = { done: 0, reset: 0, failed: 0, skipped: 0 };
  // Returns a promise only while stdout is behind: the run then waits for its reader, holding back
  // new sessions, rather than keeping a million lines in memory.
  const onOutcome = (
    outcome: ResetOutcome,
    _index: number,
    target: BulkTarget,
  ): Promise<void> | undefined => {
    counts.done++;
    counts[outcome.outcome]++;
    progress.update(counts);
    if (flags.dryRun) {
      const directive = outcome.error === null ? resetter.pipeline.describe(target) : null;
      out.write(safeJson(flags.json ? { ...outcomeLine(outcome), directive } : (directive ?? outcome.error)));
    } else if (flags.json) out.write(safeJson(outcomeLine(outcome)));
    else if (outcome.audited === false || outcome.outcome === 'failed' || outcome.error !== null) {
      // The id may be a malformed line of the input, the message an engine's reason: shown, never obeyed.
      const why = outcome.error === null ? '' : `: ${outcome.error.code}: ${outcome.error.message}`;
      const mark = outcome.audited === false ? ' (not audited: the state file could not record it)' : '';
      out.write(terminalSafe(`${outcome.outcome} ${outcome.sessionId}${why}${mark}`));
    }
    return out.drained();
  };

  let summary!: BulkSummary;
  let lateError: unknown;
  // A session listed twice is reset once; the set lives in a temporary file, flat in memory.
  let seen: ReturnType<typeof createSeenIds> | undefined;
  try {
    seen = createSeenIds();
    if (!flags.dryRun) {
      log.info({ url, tenant, botId, total: input.total, input: input.describe }, 'reset run starting');
    }
    summary = await resetter.run(input.targets(stop.signal), {
      concurrency: flags.concurrency,
      stop: stop.signal,
      signal: abort.signal,
      halt: halt.signal,
      ledger: job,
      persist,
      dryRun: flags.dryRun,
      maxUnreachable: flags.maxUnreachable,
      seen,
      onOutcome,
    });
  } finally {
    seen?.close();
    progress.stop();
    unsubscribe(CHANNELS.retry.name, onRetry);
    unsubscribe(CHANNELS.done.name, onDone);
    unsubscribe(CHANNELS.paceCut.name, onPaceCut);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    process.off('beforeExit', onBeforeExit);
    stdoutGone.signal.removeEventListener('abort', onStdoutGone);
    await resetter.close();
    // From here the deliverer deletes what it delivers itself: no reset is left to hold up, and the
    // writer must not be handed work while it closes.
    webhook?.removeVia(undefined);
    await writer?.close();
    clearInterval(heartbeat);
    const result = summary as BulkSummary | undefined;
    try {
      await job?.finish(
        result !== undefined && !result.interrupted && result.fatal === null && result.failed === 0,
      );
      await job?.release();
    } catch (err) {
      // Reported after the summary, like a metrics file that cannot be written; a later run resumes.
      lateError ??= err;
    }
    // The webhook drains first, so that the metrics file counts what it delivered.
    if (webhook !== undefined) {
      analytics = await webhook.stop(Date.now() + flags.analyticsTimeout * 1000);
      process.stderr.write(analyticsLine(analytics));
    }
    if (metrics !== undefined) {
      // A file that cannot be written is reported after the summary: it must not cut the cleanup short.
      if (flags.metricsFile !== undefined)
        await metrics.writeFile(flags.metricsFile).catch((err: unknown) => (lateError = err));
      metrics.close();
      metricsServer?.close();
    }
    await db?.close();
  }

  const human = humanSummary(summary, {
    jobId: flags.job,
    dryRun: flags.dryRun,
    layers: { cleared: resetter.plan.cleared, notCleared: resetter.plan.notClearable },
  });
  if (flags.json) {
    const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    out.write(
      safeJson({
        summary: {
          ...summary,
          jobId: flags.job ?? null,
          dryRun: flags.dryRun,
          transport: resetter.transport.name,
          cleared: resetter.plan.cleared,
          notCleared: resetter.plan.notClearable,
          maxRssMb,
          flowControl: paceSummary(resetter.pipeline.pacer),
          ...(analytics === undefined
            ? {}
            : {
                analytics: {
                  delivered: analytics.delivered,
                  pending: analytics.pending,
                  lastFailure: analytics.lastFailure ?? null,
                  stopped: analytics.stopped ?? null,
                  otherUrls: analytics.otherUrls ?? null,
                },
              }),
        },
      }),
    );
  } else {
    out.write(human.trimEnd());
  }
  out.flush();
  // Its reader went away: the summary goes where someone may still read it.
  if (out.closed) process.stderr.write(human);
  if (lateError !== undefined) process.stderr.write(errorLine(lateError));
  const code = exitCodeOf(summary, flags.dryRun, log);
  // A run that went well but could not write its metrics file still says so.
  return code === EXIT_OK && lateError !== undefined ? exitCodeFor(lateError) : code;
}

/** `--dry-run` with a selector: the count and the first rows; nothing is sent. */
function printSelection(selection: Selection, json: boolean, out: LineWriter): number {
  const { count, first, description } = selection;
  if (!json)
    out.write(`${count} sessions match ${description}${count > 0 ? `; the first ${first.length}:` : ''}`);
  for (const row of first) out.write(JSON.stringify(row));
  if (json) out.write(JSON.stringify({ summary: { dryRun: true, selector: description, count } }));
  out.flush();
  return EXIT_OK;
}

function exitCodeOf(summary: BulkSummary, dryRun: boolean, log: Logger): number {
  if (summary.fatal !== null) {
    log.info({ code: summary.fatal.code }, summary.fatal.message);
    process.stderr.write(
      terminalSafe(`cognigy-reset: ${summary.fatal.code}: ${summary.fatal.message}`) + '\n',
    );
    // By the code's kind, like any error: 3 for refused credentials, 2 for what stopped the run before
    // any reset (no token, a request the engine refuses), 1 for an engine that went away or a state
    // file that could not be written.
    return exitCodeForCode(summary.fatal.code);
  }
  if (summary.interrupted) return EXIT_INTERRUPTED;
  if (dryRun) return summary.failed > 0 ? EXIT_USAGE : EXIT_OK;
  return summary.failed > 0 ? EXIT_FAILED : EXIT_OK;
}

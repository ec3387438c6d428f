/**
 * `cognigy-reset reset`: one session or a million, validated, acknowledged and verified. This file
 * declares the flags; `reset-run.ts` turns them into a job (`src/runner/`), exit codes live in
 * `exit-codes.ts`.
 */
import { Command, Option } from 'commander';
import { DEFAULT_WS_URL } from '../../protocol/index.js';
import { DEFAULT_MAX_UNREACHABLE } from '../../reset/bulk.js';
import { DEFAULT_RETRY_POLICY } from '../../model/retry-policy.js';
import { ACK_TIMEOUT_MIN_SEC, JOB_ID_MAX } from '../../runner/spec.js';
import { DEFAULT_WEBHOOK_BATCH } from '../../sinks/webhook.js';
import { LOG_LEVELS } from '../logger.js';
import { integerIn, numberIn, textUpTo } from '../parse.js';
import { DEFAULT_STATE_FILE, runReset } from '../reset-run.js';
import { STATE_HELP, STORE_HELP } from '../store-flags.js';

export { DEFAULT_STATE_FILE };
import { addSelectorOptions } from '../selector-options.js';
import type { ResetFlags } from '../reset-flags.js';

export { STALLED } from '../reset-run.js';

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
    .option(
      '--concurrency <n>',
      'resets in flight at most, and at first (default: adapts from 16 up to 1,024, following latency)',
      integerIn(1, 10_000),
    )
    .option(
      '--fixed-concurrency',
      'keep --concurrency in flight whatever the latency, instead of adapting below it',
      false,
    )
    .option(
      '--connections <n>',
      'WebSocket connections in the pool (default: one per 64 resets the in-flight limit allows, up to 8)',
      integerIn(1, 256),
    )
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
      `deadline of each acknowledgement (at least ${ACK_TIMEOUT_MIN_SEC})`,
      numberIn(ACK_TIMEOUT_MIN_SEC, 3600),
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
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
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

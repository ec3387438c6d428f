/**
 * `reset`'s run: flags → spec and credentials, the input, metrics, then `startJob`; signals become
 * `stop`/`abort`, events become lines, and the summary an exit code. The job itself lives in
 * `src/runner/`.
 */
import type { Server } from 'node:http';
import { CognigyResetError } from '../errors.js';
import { resolveActor } from '../audit/record.js';
import { planReset } from '../model/plan.js';
import { startJob } from '../runner/start-job.js';
import { checkMetricsFile, ResetMetrics } from '../sinks/prometheus.js';
import { createSeenIds } from '../store/index.js';
import { createTransport } from '../transports/create.js';
import { printableProblem } from '../util/printable.js';
import type { ResetFlags } from './reset-flags.js';
import { addWebhookToken, engineCredentials, requireCredentials } from './credentials.js';
import { errorLine, EXIT_OK, exitCodeFor } from './exit-codes.js';
import { inputSource } from './input.js';
import { LineWriter } from './line-writer.js';
import { createLogger } from './logger.js';
import { refuseOutputCollisions } from './output-paths.js';
import { createProgress } from './progress.js';
import {
  analyticsLine,
  exitCodeOf,
  humanText,
  jsonSummary,
  outcomeText,
  printSelection,
} from './reset-output.js';
import { asFlags, specFromFlags, targetUrl } from './reset-spec.js';
import { checkConfirmed, reasonWithSelector, selectForReset, type Selection } from './select-for-reset.js';
import { hasSelector } from './selector-options.js';
import { stdoutGone } from './stdout-gone.js';
import { resolveStore } from './store-flags.js';

export { DEFAULT_STATE_FILE } from './store-flags.js';
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

export async function runReset(ids: string[], flags: ResetFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const out = new LineWriter(process.stdout, stdoutGone.signal);
  const actor = resolveActor(env);
  const tenant = identifier(flags.tenant, '--tenant', env, 'COGNIGY_TENANT_ID');
  const botId = identifier(flags.bot, '--bot', env, 'COGNIGY_BOT_ID');
  const credentials = engineCredentials(flags, env);
  const log = createLogger(flags.logLevel, () => credentials.secrets());
  requireCredentials(flags, credentials);
  if (!flags.dryRun && flags.transport === 'runtime-ws' && (tenant === '' || botId === '')) {
    throw new CognigyResetError(
      'CR_ERR_OPT_MISSING',
      'tenant and bot are required: --tenant/--bot or COGNIGY_TENANT_ID/COGNIGY_BOT_ID',
    );
  }
  // The directive's settings are checked with the spec, before any input is read or anything is dialled;
  // a selector's reason is added once the selection is known.
  const specInputs = { url: '', tenant, botId, actor, reason: flags.reason ?? null };
  specFromFlags(flags, { ...specInputs, url: 'wss://probe.invalid' });
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
    selection = await selectForReset(flags, env, log, credentials.secretSet);
    if (flags.dryRun) return printSelection(selection, flags.json, out);
    checkConfirmed(selection, flags);
  }
  const spec = specFromFlags(flags, {
    ...specInputs,
    url: targetUrl(flags, env),
    reason:
      selection === undefined ? specInputs.reason : reasonWithSelector(flags.reason, selection.description),
  });
  // What each row must carry for this transport and plan, known before the input is read.
  let probe;
  try {
    probe = createTransport(spec, {}, { dryRun: true });
  } catch (err) {
    throw asFlags(err, flags.transport);
  }
  const required = probe.requiredFields(planReset(spec.plan, probe.capabilities));
  await probe.close();
  const input = await inputSource(ids, selection?.path ?? flags.fromFile, env, process.stdin, required);

  const store = resolveStore(flags, env);
  // Served before the state file opens: a port that cannot be served stops the run with nothing written.
  if (flags.metricsFile !== undefined) {
    checkMetricsFile(flags.metricsFile);
    // Checked whether or not this run opens the state file: it may hold earlier runs' audit log. A
    // database server's store has no file here to overwrite.
    refuseOutputCollisions(
      [{ option: '--metrics-file', path: flags.metricsFile }],
      store.path,
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
      const served = await metrics.serve(flags.metricsHost, flags.metricsPort, 'metricsPort');
      process.stderr.write(`metrics: ${served.url}\n`);
      metricsServer = served.server;
    } catch (err) {
      metrics.close();
      throw asFlags(err, flags.transport);
    }
  }
  addWebhookToken(credentials, flags, env);

  // Nothing holds the event loop, yet the run has not settled: it never will. It ends here, with a coded
  // error and its summary, instead of Node's exit 13 with neither.
  const halt = new AbortController();
  const job = startJob(
    spec,
    { total: input.total, batches: (stop) => input.targets(stop) },
    {
      credentials,
      log,
      store: store.location,
      metrics,
      halt: halt.signal,
      // A session listed twice is reset once; the set lives in a temporary file, flat in memory.
      seen: createSeenIds,
    },
  );
  metrics?.watchFlow(() => {
    const status = job.status();
    return { rate: status.pace, limit: status.depth, refused: status.refused };
  });
  const onSignal = (): void => {
    if (job.status().state === 'running') {
      process.stderr.write('stopping: resets in flight finish; Ctrl-C again to abort them\n');
      job.stop();
    } else job.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onBeforeExit = (): void => {
    if (halt.signal.aborted) return;
    halt.abort(new CognigyResetError('CR_ERR_CLI_STALLED', STALLED));
    job.abort();
  };
  process.on('beforeExit', onBeforeExit);
  // Nobody reads the outcomes any more (`| head`): stop taking new sessions, as on a first Ctrl-C.
  const onStdoutGone = (): void => {
    if (job.status().state !== 'running') return;
    process.stderr.write('stopping: stdout was closed; resets in flight finish\n');
    job.stop();
  };
  if (stdoutGone.signal.aborted) onStdoutGone();
  else stdoutGone.signal.addEventListener('abort', onStdoutGone, { once: true });

  const progress = createProgress({
    stream: process.stderr,
    total: input.total,
    intervalMs: flags.progressInterval * 1000,
    enabled: flags.progress && !flags.dryRun,
    pace: () => job.status().pace,
    depth: () => job.status().depth,
  });
  let summary;
  try {
    const counts = { done: 0, reset: 0, failed: 0, skipped: 0 };
    for await (const event of job.events()) {
      if (event.type !== 'outcome') continue;
      counts.done++;
      counts[event.outcome.outcome]++;
      progress.update(counts);
      const line = outcomeText(event, spec.dryRun, flags.json);
      if (line !== undefined) out.write(line);
      // While stdout is behind, the job waits for its reader, holding back new sessions.
      const behind = out.drained();
      if (behind !== undefined) await behind;
    }
    summary = await job.done.catch((err: unknown) => {
      throw asFlags(err, flags.transport);
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('beforeExit', onBeforeExit);
    stdoutGone.signal.removeEventListener('abort', onStdoutGone);
    if (metrics !== undefined) metricsServer?.close();
  }
  let lateError = summary.lateError;
  if (summary.analytics !== undefined) process.stderr.write(analyticsLine(summary.analytics));
  if (metrics !== undefined) {
    // A file that cannot be written is reported after the summary: it must not cut the cleanup short.
    if (flags.metricsFile !== undefined)
      await metrics.writeFile(flags.metricsFile).catch((err: unknown) => (lateError ??= err));
    metrics.close();
  }
  const human = humanText(summary);
  out.write(flags.json ? jsonSummary(summary) : human.trimEnd());
  out.flush();
  // Its reader went away: the summary goes where someone may still read it.
  if (out.closed) process.stderr.write(human);
  if (lateError !== undefined) process.stderr.write(errorLine(lateError));
  const code = exitCodeOf(summary, log);
  // A run that went well but could not write its metrics file still says so.
  return code === EXIT_OK && lateError !== undefined ? exitCodeFor(lateError) : code;
}

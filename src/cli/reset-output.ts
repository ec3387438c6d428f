/** What `reset` prints: each outcome, the summary (human or JSON), the analytics line, the exit code. */
import type { Logger } from 'pino';
import { outcomeLine } from '../reset/outcome.js';
import type { JobEvent, JobSummary } from '../runner/types.js';
import type { WebhookStats } from '../sinks/webhook.js';
import { safeJson, terminalSafe } from '../util/printable.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exitCodeForCode } from './exit-codes.js';
import type { LineWriter } from './line-writer.js';
import type { Selection } from './select-for-reset.js';
import { humanSummary } from '../reset/summary.js';

/** One outcome's line: JSON with `--json`, a dry run's directive, or a line for what went wrong. */
export function outcomeText(
  event: Extract<JobEvent, { type: 'outcome' }>,
  dryRun: boolean,
  json: boolean,
): string | undefined {
  const { outcome } = event;
  if (dryRun) {
    const directive = outcome.error === null ? (event.directive ?? null) : null;
    return safeJson(json ? { ...outcomeLine(outcome), directive } : (directive ?? outcome.error));
  }
  if (json) return safeJson(outcomeLine(outcome));
  if (outcome.audited === false || outcome.outcome === 'failed' || outcome.error !== null) {
    // The id may be a malformed line of the input, the message an engine's reason: shown, never obeyed.
    const why = outcome.error === null ? '' : `: ${outcome.error.code}: ${outcome.error.message}`;
    const mark = outcome.audited === false ? ' (not audited: the state file could not record it)' : '';
    return terminalSafe(`${outcome.outcome} ${outcome.sessionId}${why}${mark}`);
  }
  return undefined;
}

/** The `--json` summary line. */
export function jsonSummary(summary: JobSummary): string {
  const { analytics, lateError: _late, flowControl, ...bulk } = summary;
  const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  return safeJson({
    summary: {
      ...bulk,
      maxRssMb,
      flowControl,
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
  });
}

export function humanText(summary: JobSummary): string {
  return humanSummary(summary, {
    jobId: summary.jobId ?? undefined,
    dryRun: summary.dryRun,
    layers: { cleared: summary.cleared, notCleared: summary.notCleared },
  });
}

/** The run's `analytics:` line on stderr: what went out, what waits, and why it waits. */
export function analyticsLine(stats: WebhookStats): string {
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

/** `--dry-run` with a selector: the count and the first rows; nothing is sent. */
export function printSelection(selection: Selection, json: boolean, out: LineWriter): number {
  const { count, first, description } = selection;
  if (!json)
    out.write(`${count} sessions match ${description}${count > 0 ? `; the first ${first.length}:` : ''}`);
  for (const row of first) out.write(JSON.stringify(row));
  if (json) out.write(JSON.stringify({ summary: { dryRun: true, selector: description, count } }));
  out.flush();
  return EXIT_OK;
}

export function exitCodeOf(summary: JobSummary, log: Logger): number {
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
  if (summary.dryRun) return summary.failed > 0 ? EXIT_USAGE : EXIT_OK;
  return summary.failed > 0 ? EXIT_FAILED : EXIT_OK;
}

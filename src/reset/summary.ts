/** The human summary printed at the end of a run: `reset` and the demo (with `--json`, the CLI prints one `{"summary":{...}}` line instead). */
import type { BulkSummary } from './bulk.js';

export function humanSummary(
  summary: BulkSummary,
  extra: {
    jobId?: string | undefined;
    dryRun: boolean;
    layers?: { cleared: readonly string[]; notCleared: readonly string[] };
  },
): string {
  const lines = [
    `sessions: ${summary.total}  reset: ${summary.reset}  verified: ${summary.verified}  failed: ${summary.failed}  skipped: ${summary.skipped}`,
  ];
  const codes = Object.entries(summary.byCode).sort((a, b) => b[1] - a[1]);
  if (codes.length > 0) lines.push(`errors: ${codes.map(([code, n]) => `${code} ${n}`).join('  ')}`);
  if (summary.retried > 0)
    lines.push(`retried: ${summary.retried}  recovered (verified after a retry): ${summary.recovered}`);
  if (!extra.dryRun) {
    const { p50, p95, p99 } = summary.latencyMs;
    lines.push(
      `latency p50 ${p50} ms  p95 ${p95} ms  p99 ${p99} ms  throughput ${Math.round(summary.throughput)} resets/s  (${(summary.durationMs / 1000).toFixed(1)} s)`,
    );
  }
  if (extra.layers !== undefined && extra.layers.notCleared.length > 0) {
    lines.push(
      `cleared: ${extra.layers.cleared.join(', ') || 'nothing'}  not clearable by this transport: ${extra.layers.notCleared.join(', ')}`,
    );
  }
  if (summary.notAudited > 0) {
    lines.push(
      `not audited: ${summary.notAudited} outcomes (the state file could not record them; each is listed above, marked "not audited")`,
    );
  }
  if (summary.fatal !== null) {
    lines.push(`stopped: ${summary.fatal.code}: ${summary.fatal.message}`);
    if (extra.jobId !== undefined)
      lines.push(`once that is fixed, run the same command again to resume job ${extra.jobId}`);
  }
  if (summary.interrupted) {
    lines.push(
      extra.jobId === undefined
        ? 'interrupted: sessions in flight finished; name a --job to make a run resumable'
        : `interrupted: run the same command again to resume job ${extra.jobId}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Progress on stderr: a bar with rate and ETA on a terminal (cli-progress), otherwise one line every few
 * seconds, so logs of a long job show it moving.
 */
import cliProgress from 'cli-progress';

export interface ProgressCounts {
  done: number;
  reset: number;
  failed: number;
  skipped: number;
}

export interface Progress {
  update(counts: ProgressCounts): void;
  stop(): void;
}

function eta(done: number, total: number | undefined, rate: number): string {
  if (total === undefined || rate <= 0) return '?';
  const seconds = Math.max(0, (total - done) / rate);
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

export function createProgress(options: {
  stream: NodeJS.WriteStream;
  total: number | undefined;
  intervalMs: number;
  enabled: boolean;
  /** The send rate in force (the pacer's), shown beside the achieved rate. */
  pace?: () => number | undefined;
  /** The in-flight limit in force, shown beside the pace. */
  depth?: () => number | undefined;
}): Progress {
  const { stream, total } = options;
  const started = performance.now();
  let counts: ProgressCounts = { done: 0, reset: 0, failed: 0, skipped: 0 };
  const rate = (): number => counts.done / Math.max(0.001, (performance.now() - started) / 1000);
  const pace = (): string => {
    const r = options.pace?.();
    const d = options.depth?.();
    return (
      (r === undefined || !Number.isFinite(r) ? '' : `  pace ${Math.round(r)}/s`) +
      (d === undefined ? '' : `  in-flight limit ${d}`)
    );
  };
  if (!options.enabled) return { update: () => undefined, stop: () => undefined };
  if (stream.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          total === undefined
            ? ' {value} done | reset {reset} failed {failed} skipped {skipped} | {rate}/s'
            : ' {bar} {percentage}% | {value}/{total} | reset {reset} failed {failed} | {rate}/s{pace} | ETA {etaText}',
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total ?? 0, 0, { reset: 0, failed: 0, skipped: 0, rate: 0, pace: '', etaText: '?' });
    return {
      update(next) {
        counts = next;
        const r = rate();
        bar.update(next.done, {
          ...next,
          rate: Math.round(r),
          pace: pace(),
          etaText: eta(next.done, total, r),
        });
      },
      stop: () => bar.stop(),
    };
  }
  const report = (): void => {
    const r = rate();
    const of =
      total === undefined ? '' : `/${total} (${Math.floor((counts.done / Math.max(1, total)) * 100)}%)`;
    stream.write(
      `progress: ${counts.done}${of} done  reset ${counts.reset}  failed ${counts.failed}  skipped ${counts.skipped}  ${Math.round(r)}/s  ETA ${eta(counts.done, total, r)}${pace()}\n`,
    );
  };
  const timer = setInterval(report, options.intervalMs);
  timer.unref();
  return {
    update(next) {
      counts = next;
    },
    stop: () => clearInterval(timer),
  };
}

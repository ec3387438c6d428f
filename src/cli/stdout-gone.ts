/**
 * Aborted when the reader of stdout goes away (`| head`): commands stop their work instead of carrying on
 * for nobody — `reset` stops taking new sessions as on a first Ctrl-C, `audit export` stops reading.
 *
 * Also aborted when, after SIGINT or SIGTERM, stdout's reader takes nothing for `STDOUT_GRACE_MS`: a
 * reader that never reads (a pipe to a stopped process) must not hold a run that was told to stop. Its
 * lines are dropped from then on: what stdout had not taken, and the summary, go to stderr instead, and
 * the process ends without waiting for what stdout still holds.
 */
import type { Writable } from 'node:stream';

export const stdoutGone = new AbortController();

/** How long stdout's reader may take nothing, after a signal, before stdout is abandoned. */
export const STDOUT_GRACE_MS = 2000;

/** `stdoutGone`'s reason when stdout was abandoned after a signal (not closed by its reader). */
export const ABANDONED = 'stdout abandoned after a signal';

/** Whether stdout was abandoned after a signal: what it still holds will never be written. */
export function stdoutAbandoned(): boolean {
  return stdoutGone.signal.aborted && stdoutGone.signal.reason === ABANDONED;
}

/** What the guard reads of stdout: a socket or pipe counts what it wrote. */
type Watched = Writable & { readonly bytesWritten?: number };

/**
 * Watches `stream` once SIGINT or SIGTERM arrived while a command handles that signal: every
 * `graceMs`, a stream that still holds text and wrote nothing since the last look is abandoned. A
 * signal no command handles keeps its default action. Returns the function that disarms the guard.
 */
export function guardStdoutOnSignal(
  stream: Watched,
  graceMs = STDOUT_GRACE_MS,
  warn: (line: string) => void = (line) => process.stderr.write(line),
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let written = -1;
  const look = (): void => {
    const now = stream.bytesWritten ?? 0;
    const stuck = stream.writableLength > 0 && now === written;
    written = now;
    if (!stuck || stdoutGone.signal.aborted) return;
    clearInterval(timer);
    warn(`cognigy-reset: stdout took nothing for ${graceMs} ms after the signal: its lines are dropped\n`);
    stdoutGone.abort(ABANDONED);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (process.listenerCount(signal) === 1) {
      // Ours alone: no command handles it, so it keeps its default action.
      disarm();
      process.kill(process.pid, signal);
      return;
    }
    if (timer !== undefined) return;
    written = stream.bytesWritten ?? 0;
    // Unreferenced: a run that ends with stdout written is not held up by the guard.
    timer = setInterval(look, graceMs).unref();
  };
  // Armed only once a command listens for a signal: until then, nothing of the guard is installed.
  let armed = false;
  const onNewListener = (event: string | symbol): void => {
    if (armed || (event !== 'SIGINT' && event !== 'SIGTERM')) return;
    armed = true;
    // First in line: a command's `once` listener is still counted when ours runs.
    process.prependListener('SIGINT', onSignal);
    process.prependListener('SIGTERM', onSignal);
  };
  const disarm = (): void => {
    clearInterval(timer);
    process.off('newListener', onNewListener);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('newListener', onNewListener);
  return disarm;
}

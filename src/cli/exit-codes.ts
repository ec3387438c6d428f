/** The one place errors become exit codes (0, 1, 2, 3 and 130; docs/cli.md lists what each means). */
import { CognigyResetError, ERROR_CATALOGUE, isErrorCode } from '../errors.js';
import { terminalSafe } from '../util/printable.js';

export const EXIT_OK = 0;
/** At least one session failed. */
export const EXIT_FAILED = 1;
/** Usage or validation error: nothing was sent. */
export const EXIT_USAGE = 2;
/** Authentication or permission refused (401/403): nothing was reset. */
export const EXIT_AUTH = 3;
/** SIGINT: the job stopped early and can be resumed. */
export const EXIT_INTERRUPTED = 130;

export function exitCodeFor(err: unknown): number {
  return err instanceof CognigyResetError ? exitCodeForCode(err.code) : EXIT_FAILED;
}

/** The exit code of an error code (a run's `summary.fatal.code` too), by its kind in the catalogue. */
export function exitCodeForCode(code: string): number {
  if (!isErrorCode(code)) return EXIT_FAILED;
  switch (ERROR_CATALOGUE[code].kind) {
    case 'usage':
      return EXIT_USAGE;
    case 'auth':
      return EXIT_AUTH;
    default:
      return EXIT_FAILED;
  }
}

/** The line an error becomes on stderr: its stable code (`CR_ERR_INTERNAL` for one we did not expect) and message. */
export function errorLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof CognigyResetError ? err.code : 'CR_ERR_INTERNAL';
  // A CognigyResetError's message is safe already; anything else (a library's error) is made so here.
  return `cognigy-reset: ${code}: ${terminalSafe(message)}\n`;
}

/**
 * Aborted when the reader of stdout goes away (`| head`): commands stop their work instead of carrying on
 * for nobody — `reset` stops taking new sessions as on a first Ctrl-C, `audit export` stops reading.
 */
export const stdoutGone = new AbortController();

let lastMs = Number.NaN;
let lastIso = '';

/**
 * `new Date(ms).toISOString()`, formatted once per millisecond: a bulk run stamps many frames and
 * records within each one.
 */
export function isoTime(ms: number = Date.now()): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

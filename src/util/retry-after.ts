/**
 * The longest wait an engine or tracker may ask for. Longer (or no finite number at all: `Retry-After`
 * of a thousand digits, a date in the year 9999) is refused, not slept: a sleep past Node's timer limit
 * fires at once, which would make a retry loop busy.
 */
export const MAX_RETRY_AFTER_MS = 300_000;

/** `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3); both become milliseconds. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

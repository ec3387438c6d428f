/** How the dashboard writes numbers, durations and percentages. */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export const whole = (n: number): string => integer.format(n);
export const oneDecimal = (n: number): string => decimal.format(n);

/** Whole per cent, rounded down: a job shows 100 % only when every session is done. */
export function percent(done: number, total: number): number {
  return total === 0 ? 0 : Math.floor((100 * done) / total);
}

export function duration(sec: number | null): string {
  if (sec === null) return '—';
  const s = Math.round(sec);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function time(iso: string | null): string {
  return iso === null ? '—' : new Date(iso).toLocaleString();
}

/** A scope as the page says it. */
export const SCOPE_USES: Record<string, string> = {
  'jobs:read': 'see jobs and preview one',
  'jobs:write': 'start and cancel jobs',
  'audit:read': 'verify the audit chain',
};

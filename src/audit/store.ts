/** The audit log's CSV export: its header and one line per record (the store reads the records). */
import type { AuditRecord } from './chain.js';

const CSV_COLUMNS: (keyof AuditRecord)[] = [
  'seq',
  'ts',
  'actor',
  'reason',
  'jobId',
  'tenant',
  'botId',
  'sessionId',
  'transport',
  'cleared',
  'notCleared',
  'outcome',
  'verified',
  'errorCode',
  'attempts',
  'latencyMs',
  'requestId',
  'directiveHash',
  'prevHash',
  'hash',
];

function csvCell(value: AuditRecord[keyof AuditRecord]): string {
  if (value === null) return '';
  const text = Array.isArray(value) ? value.join(' ') : String(value);
  // Quote when needed; neutralise spreadsheet formulas (a cell starting with = + - @).
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

export function csvLine(record: AuditRecord): string {
  return CSV_COLUMNS.map((column) => csvCell(record[column])).join(',');
}

/** The audit log's CSV export: its header and one line per record (the store reads the records). */
import { terminalSafe } from '../util/printable.js';
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

/**
 * One cell. No raw character a line-based reader or a terminal could act on: the ones `terminalSafe`
 * escapes (C0 controls with tab, CR and LF, DEL, C1 controls, format characters such as bidi overrides,
 * line and paragraph separators, lone surrogates) are written as `\uXXXX`, and a backslash as `\\`, so
 * that every cell reads back unambiguously and a record is one line. A cell a spreadsheet would run as a
 * formula (starting with = + - @) is prefixed with `'`; one holding a quote or a comma is quoted.
 */
export function csvCell(value: AuditRecord[keyof AuditRecord]): string {
  if (value === null) return '';
  const text = terminalSafe((Array.isArray(value) ? value.join(' ') : String(value)).replace(/\\/g, '\\\\'));
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

export function csvLine(record: AuditRecord): string {
  return CSV_COLUMNS.map((column) => csvCell(record[column])).join(',');
}

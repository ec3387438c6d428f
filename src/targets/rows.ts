/**
 * From input lines to reset targets: one session id a line, CSV with a `sessionId` column, or JSON Lines,
 * decided by the first row. Each row is checked exactly as given (no trimming, strict UTF-8) and for the
 * fields its transport needs. The CLI and the service parse their inputs here.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse/sync';
import { CognigyResetError } from '../errors.js';
import { sessionIdProblem } from '../protocol/index.js';
import type { BulkTarget } from '../reset/bulk.js';
import type { TargetField } from '../transports/transport.js';
import { notUtf8Problem, showEscapedBytes } from '../util/strict-utf8.js';
import { safeJson } from '../util/printable.js';
import { readLineBatches } from './lines.js';

/** Why an id (or another field) would be rewritten by trimming: it is refused instead. */
export function edgeSpaceProblem(value: string): string | undefined {
  return value !== value.trim()
    ? 'has spaces around it: ids are taken exactly as given, so remove them'
    : undefined;
}

/**
 * Arguments and variables reach us already decoded, each invalid byte as U+FFFD: an id that holds one
 * cannot be told from a damaged one, so it is refused.
 */
export function replacementProblem(id: string): string | undefined {
  return id.includes('\uFFFD')
    ? 'holds U+FFFD, the mark of bytes that were not valid UTF-8: give the id as UTF-8'
    : undefined;
}

/** A session id's problem as input: malformed, or with spaces that would be taken as part of it. */
export function inputIdProblem(id: string): string | undefined {
  return sessionIdProblem(id) ?? edgeSpaceProblem(id);
}

export function lineError(where: string, line: number, id: string, problem: string): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_OPT_SESSION_ID',
    `${where} line ${line}: session id ${safeJson(id.slice(0, 80))} ${problem}`,
    { field: 'sessionId' },
  );
}

type Format = 'lines' | 'csv' | 'jsonl';

/** Batches of targets, in input order; `stop` closes the input, even in the middle of a read. */
export type TargetBatches = (stop?: AbortSignal) => AsyncGenerator<BulkTarget[]>;
const FIELDS = ['userId', 'flowReferenceId', 'entrypoint'] as const;

/**
 * Turns input lines into targets. The format is decided by the first row: a JSON object makes the input
 * JSON Lines; a CSV header naming a `sessionId` column makes it CSV (one row a line); anything else is
 * one session id a line. Each row is checked for what the transport needs.
 */
class RowParser {
  #format: Format | undefined;
  #columns: string[] = [];
  readonly #required: readonly TargetField[];
  readonly #where: string;

  constructor(required: readonly TargetField[], where: string) {
    this.#required = required;
    this.#where = where;
  }

  get format(): Format | undefined {
    return this.#format;
  }

  /** The row's target and its problem, if any; undefined for a CSV header. */
  parse(
    text: string,
    line: number,
  ): { target: Omit<BulkTarget, 'index'>; problem: CognigyResetError | undefined } | undefined {
    const notUtf8 = notUtf8Problem(text);
    if (notUtf8 !== undefined) {
      // Refused, and shown by its bytes: the failed outcome never carries an id that no file holds.
      const shown = showEscapedBytes(text.slice(0, 80));
      return {
        target: { sessionId: shown },
        problem: new CognigyResetError('CR_ERR_CLI_INPUT_ENCODING', `${this.#where} line ${line} ${notUtf8}`),
      };
    }
    if (this.#format === undefined) {
      if (text.trimStart().startsWith('{')) this.#format = 'jsonl';
      else {
        // A header alone on its line (a CSV of one column) is a header too, not an id.
        const header =
          text.includes(',') || text.trim().toLowerCase() === 'sessionid' ? csvRow(text) : undefined;
        const columns = header?.map((c) => c.trim()) ?? [];
        if (columns.some((c) => c.toLowerCase() === 'sessionid')) {
          this.#format = 'csv';
          this.#columns = columns.map((c) => (c.toLowerCase() === 'entrypoint' ? 'entrypoint' : c));
          return undefined;
        }
        this.#format = 'lines';
      }
    }
    if (this.#format === 'lines' && this.#required.length === 0) {
      // The common bulk input, one id a line: no row to pick fields from.
      const idProblem = inputIdProblem(text);
      return {
        target: { sessionId: text },
        problem: idProblem === undefined ? undefined : lineError(this.#where, line, text, idProblem),
      };
    }
    let row: Record<string, unknown>;
    if (this.#format === 'lines') row = { sessionId: text };
    else if (this.#format === 'jsonl') {
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          throw new Error('not an object');
        row = parsed as Record<string, unknown>;
      } catch {
        return {
          target: { sessionId: text.slice(0, 80) },
          problem: new CognigyResetError(
            'CR_ERR_CLI_INPUT',
            `${this.#where} line ${line}: not a JSON object`,
          ),
        };
      }
    } else {
      const cells = csvRow(text);
      if (cells === undefined) {
        return {
          target: { sessionId: text.slice(0, 80) },
          problem: new CognigyResetError('CR_ERR_CLI_INPUT', `${this.#where} line ${line}: not a CSV row`),
        };
      }
      row = Object.fromEntries(this.#columns.map((c, i) => [c, cells[i] ?? '']));
    }
    const pick = (name: string): string | undefined => {
      const value = row[name] ?? (name === 'entrypoint' ? row['entryPoint'] : undefined);
      return typeof value === 'string' && value !== '' ? value : undefined;
    };
    const sessionId = pick('sessionId') ?? pick('sessionid') ?? '';
    const target: Omit<BulkTarget, 'index'> = { sessionId };
    for (const field of FIELDS) {
      const value = pick(field);
      if (value !== undefined) target[field] = value;
    }
    const idProblem = inputIdProblem(sessionId);
    if (idProblem !== undefined)
      return { target, problem: lineError(this.#where, line, sessionId, idProblem) };
    const spaced = FIELDS.find((field) => target[field] !== undefined && edgeSpaceProblem(target[field]));
    if (spaced !== undefined) {
      return {
        target,
        problem: new CognigyResetError(
          'CR_ERR_CLI_INPUT',
          `${this.#where} line ${line}: ${spaced} ${safeJson(target[spaced]!.slice(0, 80))} ${edgeSpaceProblem(target[spaced]!)}`,
          { field: spaced },
        ),
      };
    }
    const missing = this.#required.filter((field) => target[field] === undefined);
    if (missing.length > 0) {
      return {
        target,
        problem: new CognigyResetError(
          'CR_ERR_OPT_MISSING',
          `${this.#where} line ${line}: session ${JSON.stringify(sessionId.slice(0, 80))} lacks ${missing.join(', ')}, which this transport needs`,
          { field: missing[0]! },
        ),
      };
    }
    return { target, problem: undefined };
  }
}

function csvRow(text: string): string[] | undefined {
  // A row with no quote is its cells between commas, exactly as the parser would read it; the parser,
  // called once a row, costs far more on a wide row than the split.
  if (text !== '' && !text.includes('"')) return text.split(',');
  try {
    const rows = parseCsv(text, { relax_column_count: true }) as string[][];
    return rows[0];
  } catch {
    return undefined;
  }
}

export function openFile(path: string): NodeJS.ReadableStream {
  return createReadStream(path, { highWaterMark: 64 * 1024 });
}

/** Scans a regular file: counts its rows and refuses the first one that is malformed or incomplete. */
export async function countTargetsInFile(path: string, required: readonly TargetField[]): Promise<number> {
  let count = 0;
  const parser = new RowParser(required, path);
  for await (const batch of readLineBatches(openFile(path), path)) {
    for (const { text, line, tooLong } of batch) {
      if (tooLong === true)
        throw new CognigyResetError('CR_ERR_CLI_LINE_TOO_LONG', `${path} line ${line} is longer than 1 MiB`);
      const row = parser.parse(text, line);
      if (row === undefined) continue;
      if (row.problem !== undefined) throw row.problem;
      count++;
    }
  }
  return count;
}

/** Targets of an input, a chunk's worth at a time (the bulk runner takes batches). */
export async function* parseTargets(
  input: NodeJS.ReadableStream,
  where: string,
  required: readonly TargetField[],
  stop?: AbortSignal,
): AsyncGenerator<BulkTarget[]> {
  // An idle stdin, or a line that never ends, must not hold a stopped run: the stream is closed under
  // the read that waits on it, and the input ends there.
  const close = (): void => void (input as Readable).destroy();
  if (stop?.aborted === true) close();
  stop?.addEventListener('abort', close, { once: true });
  try {
    yield* rowsOf(input, where, required);
  } catch (err) {
    if (stop?.aborted !== true) throw err;
  } finally {
    stop?.removeEventListener('abort', close);
  }
}

async function* rowsOf(
  input: NodeJS.ReadableStream,
  where: string,
  required: readonly TargetField[],
): AsyncGenerator<BulkTarget[]> {
  const parser = new RowParser(required, where);
  let index = 0;
  for await (const lines of readLineBatches(input, where)) {
    const batch: BulkTarget[] = [];
    for (const { text, line, tooLong } of lines) {
      if (tooLong === true) {
        batch.push({
          sessionId: text,
          index: index++,
          problem: new CognigyResetError(
            'CR_ERR_CLI_LINE_TOO_LONG',
            `${where} line ${line} is longer than 1 MiB`,
          ),
        });
        continue;
      }
      const row = parser.parse(text, line);
      if (row === undefined) continue;
      const target = row.target as BulkTarget;
      target.index = index++;
      if (row.problem !== undefined) target.problem = row.problem;
      batch.push(target);
    }
    if (batch.length > 0) yield batch;
  }
}

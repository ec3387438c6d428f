/**
 * Session ids for `reset`: from the arguments, `TARGET_SESSION_ID`, or `--from-file` (a path or `-` for
 * stdin), one id a line. Files are read as a stream, so a million ids use flat memory. A regular file is
 * scanned once first, so a malformed line is refused (exit 2) before anything is sent, and so the total
 * is known for the ETA.
 */
import { createReadStream, type Stats, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { CognigyResetError } from '../errors.js';
import { sessionIdProblem } from '../protocol/index.js';
import { parse as parseCsv } from 'csv-parse/sync';
import type { BulkTarget } from '../reset/bulk.js';
import type { TargetField } from '../transports/transport.js';
import { notUtf8Problem, showEscapedBytes, strictUtf8 } from '../util/strict-utf8.js';
import { safeJson } from '../util/printable.js';

interface Line {
  text: string;
  line: number;
  tooLong?: true;
}

/**
 * Lines of a stream, without their line ends, a chunk's worth at a time (one await per chunk, not per
 * line); blank lines and `#` comments are skipped.
 */
export async function* readLineBatches(input: NodeJS.ReadableStream, where: string): AsyncGenerator<Line[]> {
  try {
    yield* lineBatches(input);
  } catch (err) {
    throw readError(where, err);
  }
}

/** An input that cannot be read (a directory, an I/O error) is the user's problem, named. */
function readError(where: string, err: unknown): unknown {
  if (err instanceof CognigyResetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return cannotRead(where, code === 'EISDIR' ? 'it is a directory' : (code ?? (err as Error).message), err);
}

function cannotRead(where: string, why: string, cause?: unknown): CognigyResetError {
  return new CognigyResetError('CR_ERR_CLI_INPUT', `cannot read ${where}: ${why}`, { cause });
}

async function* lineBatches(input: NodeJS.ReadableStream): AsyncGenerator<Line[]> {
  let rest = '';
  let line = 0;
  /** Inside a line past the limit: its text is dropped up to the next line end. */
  let skipping = false;
  for await (const chunk of strictUtf8(input)) {
    let batch: Line[] = [];
    // A UTF-8 byte order mark opens the input, it is not part of its first line.
    const text = line === 0 && rest === '' && chunk.startsWith('\uFEFF') ? chunk.slice(1) : rest + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      line++;
      if (skipping) {
        skipping = false;
        start = nl + 1;
        continue;
      }
      if (nl - start > MAX_LINE_CHARS) {
        batch.push({ text: text.slice(start, start + 80), line, tooLong: true });
        start = nl + 1;
        continue;
      }
      const value = clean(text.slice(start, nl));
      start = nl + 1;
      if (value !== undefined && batch.push({ text: value, line }) >= LINES_PER_BATCH) {
        // Small batches: what a batch holds dies young instead of waiting out a whole chunk.
        yield batch;
        batch = [];
      }
    }
    rest = text.slice(start);
    if (rest.length > MAX_LINE_CHARS && !skipping) {
      // A line this long is no session id: report it once, keep reading the lines after it.
      batch.push({ text: rest.slice(0, 80), line: line + 1, tooLong: true });
      skipping = true;
    }
    if (skipping) rest = '';
    if (batch.length > 0) yield batch;
  }
  line++;
  const last = skipping ? undefined : clean(rest);
  if (last !== undefined) yield [{ text: last, line }];
}

/** Lines of a stream, one at a time (see `readLineBatches`). */
export async function* readLines(input: NodeJS.ReadableStream, where: string): AsyncGenerator<Line> {
  for await (const batch of readLineBatches(input, where)) yield* batch;
}

const MAX_LINE_CHARS = 1024 * 1024;
const LINES_PER_BATCH = 512;

/**
 * A line as given, without its terminator (LF, or CR LF); undefined for a blank line (spaces and tabs at
 * most) or a comment (`#` after them). Nothing else is removed: an id with spaces around it is refused
 * (`edgeSpaceProblem`), never trimmed into another id.
 */
function clean(raw: string): string | undefined {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const start = /^[ \t]*/.exec(text)![0].length;
  if (start === text.length || text[start] === '#') return undefined;
  return text;
}

/** Why an id (or another field) would be rewritten by trimming: it is refused instead. */
function edgeSpaceProblem(value: string): string | undefined {
  return value !== value.trim()
    ? 'has spaces around it: ids are taken exactly as given, so remove them'
    : undefined;
}

/**
 * Arguments and variables reach us already decoded, each invalid byte as U+FFFD: an id that holds one
 * cannot be told from a damaged one, so it is refused.
 */
function replacementProblem(id: string): string | undefined {
  return id.includes('\uFFFD')
    ? 'holds U+FFFD, the mark of bytes that were not valid UTF-8: give the id as UTF-8'
    : undefined;
}

/** A session id's problem as input: malformed, or with spaces that would be taken as part of it. */
function inputIdProblem(id: string): string | undefined {
  return sessionIdProblem(id) ?? edgeSpaceProblem(id);
}

function lineError(where: string, line: number, id: string, problem: string): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_OPT_SESSION_ID',
    `${where} line ${line}: session id ${safeJson(id.slice(0, 80))} ${problem}`,
    { field: 'sessionId' },
  );
}

export interface InputSource {
  /** Known up front for arguments and regular files; undefined for stdin and pipes. */
  total: number | undefined;
  describe: string;
  /** Batches of targets, in input order; `stop` closes the input, even in the middle of a read. */
  targets(stop?: AbortSignal): AsyncGenerator<BulkTarget[]>;
}

type Format = 'lines' | 'csv' | 'jsonl';
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
        const header = text.includes(',') ? csvRow(text) : undefined;
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
  try {
    const rows = parseCsv(text, { relax_column_count: true }) as string[][];
    return rows[0];
  } catch {
    return undefined;
  }
}

function openFile(path: string): NodeJS.ReadableStream {
  return createReadStream(path, { highWaterMark: 64 * 1024 });
}

/** Scans a regular file: counts its rows and refuses the first one that is malformed or incomplete. */
async function prescan(path: string, required: readonly TargetField[]): Promise<number> {
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
async function* rows(
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

export async function inputSource(
  args: readonly string[],
  fromFile: string | undefined,
  env: NodeJS.ProcessEnv,
  stdin: NodeJS.ReadableStream,
  required: readonly TargetField[] = [],
): Promise<InputSource> {
  if (fromFile !== undefined && args.length > 0) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      'give session ids as arguments or with --from-file, not both',
    );
  }
  if (fromFile === undefined) {
    const ids = args.length > 0 ? [...args] : env['TARGET_SESSION_ID'] ? [env['TARGET_SESSION_ID']] : [];
    if (ids.length === 0) {
      throw new CognigyResetError(
        'CR_ERR_OPT_MISSING',
        'no session id: pass SESSION_ID arguments, --from-file PATH (or - for stdin), or set TARGET_SESSION_ID',
      );
    }
    const from = args.length > 0 ? 'argument' : 'TARGET_SESSION_ID';
    ids.forEach((id, i) => {
      const damaged = replacementProblem(id);
      if (damaged !== undefined) {
        throw new CognigyResetError('CR_ERR_CLI_INPUT_ENCODING', `${from} ${i + 1}: session id ${damaged}`, {
          field: 'sessionId',
        });
      }
      const problem = inputIdProblem(id);
      if (problem !== undefined) throw lineError('argument', i + 1, id, problem);
    });
    if (required.length > 0) {
      throw new CognigyResetError(
        'CR_ERR_OPT_MISSING',
        `this transport needs ${required.join(', ')} for each session: give rows with --from-file (CSV or JSON Lines)`,
      );
    }
    return {
      total: ids.length,
      describe: args.length > 0 ? 'arguments' : 'TARGET_SESSION_ID',
      targets: async function* () {
        await Promise.resolve();
        yield ids.map((sessionId, index) => ({ sessionId, index }));
      },
    };
  }
  if (fromFile === '-') {
    return {
      total: undefined,
      describe: 'stdin',
      targets: (stop) => rows(stdin, 'stdin', required, stop),
    };
  }
  let stat: Stats;
  try {
    stat = statSync(fromFile);
  } catch (cause) {
    throw readError(`--from-file ${fromFile}`, cause);
  }
  if (stat.isDirectory()) throw cannotRead(`--from-file ${fromFile}`, 'it is a directory');
  const total = stat.isFile() ? await prescan(fromFile, required) : undefined;
  return {
    total,
    describe: fromFile,
    targets: (stop) => rows(openFile(fromFile), fromFile, required, stop),
  };
}

/**
 * Lines of an input stream (a file, stdin, an uploaded body), read a chunk at a time so a million lines
 * use flat memory: strict UTF-8, line ends removed, blank lines and `#` comments skipped, a line past
 * 1 MiB reported once and skipped.
 */
import { CognigyResetError } from '../errors.js';
import { strictUtf8 } from '../util/strict-utf8.js';

export interface Line {
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
export function readError(where: string, err: unknown): unknown {
  if (err instanceof CognigyResetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return cannotRead(where, code === 'EISDIR' ? 'it is a directory' : (code ?? (err as Error).message), err);
}

export function cannotRead(where: string, why: string, cause?: unknown): CognigyResetError {
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

export const MAX_LINE_CHARS = 1024 * 1024;
export const LINES_PER_BATCH = 512;

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

/**
 * Session ids for `reset`: from the arguments, `TARGET_SESSION_ID`, or `--from-file` (a path or `-` for
 * stdin), one id a line. Files are read as a stream, so a million ids use flat memory. A regular file is
 * scanned once first, so a malformed line is refused (exit 2) before anything is sent, and so the total
 * is known for the ETA.
 */
import { createReadStream, statSync } from 'node:fs';
import { CognigyResetError } from '../errors.js';
import { sessionIdProblem } from '../protocol/index.js';
import type { BulkTarget } from '../reset/bulk.js';

/** Lines of a stream, without their line ends; blank lines and `#` comments are skipped. */
export async function* readLines(
  input: NodeJS.ReadableStream,
): AsyncGenerator<{ text: string; line: number }> {
  let rest = '';
  let line = 0;
  input.setEncoding?.('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    const text = rest + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      line++;
      const value = clean(text.slice(start, nl));
      start = nl + 1;
      if (value !== undefined) yield { text: value, line };
    }
    rest = text.slice(start);
    if (rest.length > 1024 * 1024) {
      throw new CognigyResetError('CR_ERR_CLI_INPUT', `line ${line + 1} is longer than 1 MiB`);
    }
  }
  line++;
  const last = clean(rest);
  if (last !== undefined) yield { text: last, line };
}

function clean(raw: string): string | undefined {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  return trimmed;
}

function lineError(where: string, line: number, id: string, problem: string): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_OPT_SESSION_ID',
    `${where} line ${line}: session id ${JSON.stringify(id.slice(0, 80))} ${problem}`,
    { field: 'sessionId' },
  );
}

export interface InputSource {
  /** Known up front for arguments and regular files; undefined for stdin and pipes. */
  total: number | undefined;
  describe: string;
  targets(): AsyncGenerator<BulkTarget>;
}

function openFile(path: string): NodeJS.ReadableStream {
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  return stream;
}

/** Scans a regular file: counts its ids and refuses the first malformed one. */
async function prescan(path: string): Promise<number> {
  let count = 0;
  for await (const { text, line } of readLines(openFile(path))) {
    const problem = sessionIdProblem(text);
    if (problem !== undefined) throw lineError(path, line, text, problem);
    count++;
  }
  return count;
}

export async function inputSource(
  args: readonly string[],
  fromFile: string | undefined,
  env: NodeJS.ProcessEnv,
  stdin: NodeJS.ReadableStream,
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
    ids.forEach((id, i) => {
      const problem = sessionIdProblem(id);
      if (problem !== undefined) throw lineError('argument', i + 1, id, problem);
    });
    return {
      total: ids.length,
      describe: args.length > 0 ? 'arguments' : 'TARGET_SESSION_ID',
      targets: async function* () {
        await Promise.resolve();
        for (let i = 0; i < ids.length; i++) yield { sessionId: ids[i]!, index: i };
      },
    };
  }
  if (fromFile === '-') {
    return {
      total: undefined,
      describe: 'stdin',
      async *targets() {
        let index = 0;
        for await (const { text, line } of readLines(stdin)) {
          const problem = sessionIdProblem(text);
          yield {
            sessionId: text,
            index: index++,
            problem: problem === undefined ? undefined : lineError('stdin', line, text, problem),
          };
        }
      },
    };
  }
  let regular: boolean;
  try {
    regular = statSync(fromFile).isFile();
  } catch (cause) {
    throw new CognigyResetError(
      'CR_ERR_CLI_INPUT',
      `cannot read --from-file ${fromFile}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        cause,
      },
    );
  }
  const total = regular ? await prescan(fromFile) : undefined;
  return {
    total,
    describe: fromFile,
    async *targets() {
      let index = 0;
      for await (const { text, line } of readLines(openFile(fromFile))) {
        const problem = sessionIdProblem(text);
        yield {
          sessionId: text,
          index: index++,
          problem: problem === undefined ? undefined : lineError(fromFile, line, text, problem),
        };
      }
    },
  };
}

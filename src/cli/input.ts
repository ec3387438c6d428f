/**
 * Session ids for `reset`: from the arguments, `TARGET_SESSION_ID`, or `--from-file` (a path or `-` for
 * stdin). The rows are parsed by `src/targets/` (as the service parses an upload). A regular file is
 * scanned once first, so a malformed line is refused (exit 2) before anything is sent, and so the total
 * is known for the ETA.
 */
import { type Stats, statSync } from 'node:fs';
import { CognigyResetError } from '../errors.js';
import type { TargetField } from '../transports/transport.js';
import { cannotRead, readError } from '../targets/lines.js';
import {
  inputIdProblem,
  lineError,
  openFile,
  countTargetsInFile,
  replacementProblem,
  parseTargets,
  type TargetBatches,
} from '../targets/rows.js';

export interface InputSource {
  /** Known up front for arguments and regular files; undefined for stdin and pipes. */
  total: number | undefined;
  describe: string;
  /** Batches of targets, in input order; `stop` closes the input, even in the middle of a read. */
  targets: TargetBatches;
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
      targets: (stop) => parseTargets(stdin, 'stdin', required, stop),
    };
  }
  let stat: Stats;
  try {
    stat = statSync(fromFile);
  } catch (cause) {
    throw readError(`--from-file ${fromFile}`, cause);
  }
  if (stat.isDirectory()) throw cannotRead(`--from-file ${fromFile}`, 'it is a directory');
  const total = stat.isFile() ? await countTargetsInFile(fromFile, required) : undefined;
  return {
    total,
    describe: fromFile,
    targets: (stop) => parseTargets(openFile(fromFile), fromFile, required, stop),
  };
}

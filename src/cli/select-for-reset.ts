/**
 * `reset` with a selector (`--flow`, `--endpoint`, `--node`): the matching rows are listed once into a
 * private temporary file (JSON Lines, removed when the process exits), so the count is known before
 * anything is sent, the list reset works through is the list that was counted, and memory stays flat.
 * Sending needs `--yes`, or `--expect N` within `--expect-margin`; `--dry-run` shows the count and the
 * first rows. The selector's description (never a key) goes into each audit record's reason.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CognigyResetError } from '../errors.js';
import { describeSelector, selectSessions, type SessionRow } from '../select/index.js';
import { formatRow } from './commands/sessions.js';
import { selectorSetup, type SelectorFlags } from './selector-options.js';

export interface SelectionFlags extends SelectorFlags {
  expect?: number;
  expectMargin: number;
  yes: boolean;
  dryRun: boolean;
}

export interface Selection {
  path: string;
  count: number;
  first: SessionRow[];
  description: string;
}

const FIRST_ROWS = 10;

export async function selectForReset(
  flags: SelectionFlags,
  env: NodeJS.ProcessEnv,
  log: Logger,
  secrets: Set<string>,
): Promise<Selection> {
  const setup = selectorSetup(flags, env, (info) => log.warn(info, 'OData request failed; retrying'));
  for (const secret of setup.secrets) secrets.add(secret);
  const description = describeSelector(setup.selector);
  const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-select-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sessions.jsonl');
  const fd = openSync(path, 'wx', 0o600);
  const first: SessionRow[] = [];
  let count = 0;
  try {
    for await (const rows of selectSessions(setup.selector, {
      odata: setup.odata,
      rest: setup.rest,
      pageSize: flags.pageSize,
    })) {
      writeSync(fd, rows.map((row) => `${formatRow(row, 'jsonl')}\n`).join(''));
      for (const row of rows) if (first.length < FIRST_ROWS) first.push(row);
      count += rows.length;
    }
  } catch (err) {
    if (!(err instanceof CognigyResetError)) throw err;
    throw new CognigyResetError(
      err.code,
      `${err.message}; selecting stopped after ${count} sessions (${description}): nothing was sent`,
      { cause: err, ...(err.status === undefined ? {} : { status: err.status }) },
    );
  } finally {
    closeSync(fd);
  }
  log.info({ selector: description, count, odataRequests: setup.odata.requests }, 'sessions selected');
  return { path, count, first, description };
}

/** Refuses a selection the user has not confirmed, before anything is sent. */
export function checkConfirmed(selection: Selection, flags: SelectionFlags): void {
  const { count, description } = selection;
  if (flags.expect !== undefined) {
    const margin = (flags.expect * flags.expectMargin) / 100;
    if (Math.abs(count - flags.expect) > margin) {
      throw new CognigyResetError(
        'CR_ERR_SELECT_COUNT_MISMATCH',
        `${count} sessions match ${description}, expected ${flags.expect} ± ${flags.expectMargin}%: nothing was sent`,
        { field: '--expect' },
      );
    }
    return;
  }
  if (!flags.yes) {
    throw new CognigyResetError(
      'CR_ERR_SELECT_UNCONFIRMED',
      `${count} sessions match ${description}; nothing was sent: see them with --dry-run, then pass --expect ${count} or --yes`,
      { field: '--yes' },
    );
  }
}

/** The audit reason: the user's, then the selector that chose the session. */
export { reasonWithSelector } from '../select/index.js';

/**
 * `cognigy-reset sessions list`: the sessions a selector matches, one row per distinct session, as JSON
 * Lines (or CSV) that `reset --from-file` reads as they are. A list that stops early says
 * how many rows it printed and exits non-zero: never a silently short list.
 */
import { Command, Option } from 'commander';
import { CognigyResetError } from '../../errors.js';
import { ROW_FIELDS, selectSessions, type SessionRow } from '../../select/index.js';
import { errorLine, EXIT_OK, exitCodeFor } from '../exit-codes.js';
import { LineWriter } from '../line-writer.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../logger.js';
import { integerIn } from '../parse.js';
import { addSelectorOptions, selectorSetup, type SelectorFlags } from '../selector-options.js';
import { stdoutGone } from '../stdout-gone.js';
import { scrubSecrets } from '../../util/redact.js';

interface ListFlags extends SelectorFlags {
  format: 'jsonl' | 'csv';
  limit?: number;
  logLevel: LogLevel;
}

function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function formatRow(row: SessionRow, format: 'jsonl' | 'csv'): string {
  if (format === 'csv') return ROW_FIELDS.map((f) => csvCell(row[f])).join(',');
  return JSON.stringify({
    sessionId: row.sessionId,
    userId: row.userId,
    flowReferenceId: row.flowReferenceId,
    entrypoint: row.entrypoint,
    lastSeen: row.lastSeen,
  });
}

export function sessionsCommand(): Command {
  const list = new Command('list').description(
    'list the sessions a selector matches (one row per session: JSON Lines, or CSV)',
  );
  addSelectorOptions(list, { withApiUrl: true })
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .option('--limit <n>', 'print at most this many rows', integerIn(1, Number.MAX_SAFE_INTEGER))
    .option('--allow-insecure', 'allow plain http:// to a host that is not loopback', false)
    .addOption(
      new Option('--log-level <level>', 'log level of the JSON logs on stderr')
        .choices(LOG_LEVELS)
        .default('warn'),
    )
    .action(async (flags: ListFlags) => {
      process.exitCode = await runList(flags, process.env);
    });
  return new Command('sessions').description('find sessions in Cognigy analytics data').addCommand(list);
}

async function runList(flags: ListFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const secrets: string[] = [];
  const log = createLogger(flags.logLevel, () => secrets);
  const setup = selectorSetup(flags, env, (info) => log.warn(info, 'OData request failed; retrying'));
  secrets.push(...setup.secrets);
  const out = new LineWriter(process.stdout, stdoutGone.signal);
  if (flags.format === 'csv') out.write(ROW_FIELDS.join(','));
  let printed = 0;
  try {
    for await (const rows of selectSessions(setup.selector, {
      odata: setup.odata,
      rest: setup.rest,
      pageSize: flags.pageSize,
      limit: flags.limit,
    })) {
      if (out.closed) break;
      for (const row of rows) out.write(formatRow(row, flags.format));
      printed += rows.length;
      await out.drained();
    }
  } catch (err) {
    out.flush();
    const code = err instanceof CognigyResetError ? err.code : 'CR_ERR_INTERNAL';
    process.stderr.write(scrubSecrets(errorLine(err), secrets));
    process.stderr.write(
      `cognigy-reset: ${code}: the list stopped after ${printed} rows were printed: it is incomplete\n`,
    );
    return exitCodeFor(err);
  }
  out.flush();
  log.info({ rows: printed, odataRequests: setup.odata.requests }, 'list done');
  return EXIT_OK;
}

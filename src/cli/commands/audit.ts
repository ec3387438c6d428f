/** `cognigy-reset audit verify|export`: the governance audit log in the store. */
import { createReadStream, existsSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  type AuditRecord,
  ChainChecker,
  duplicateKey,
  GENESIS_HASH,
  recordShapeProblem,
} from '../../audit/chain.js';
import { errorLine } from '../exit-codes.js';
import { csvHeader, csvLine } from '../../audit/store.js';
import { CognigyResetError } from '../../errors.js';
import { openStore } from '../../store/index.js';
import { isDate, isDateTime } from '../../protocol/schemas.js';
import { readLines } from '../../targets/lines.js';
import { stdoutGone } from '../stdout-gone.js';
import { LineWriter } from '../line-writer.js';
import { safeJson } from '../../util/printable.js';
import { resolveStore, STATE_HELP, STORE_HELP, type StoreFlags } from '../store-flags.js';

/** The store to read: a state file must exist (reading never creates one); a database is checked on open. */
function storeToRead(flags: StoreFlags): string {
  const { location, path } = resolveStore(flags, process.env);
  if (path !== undefined && !existsSync(path))
    throw new CognigyResetError('CR_ERR_OPT_INVALID', `no state file at ${path}`, {
      field: flags.store !== undefined ? '--store' : '--state',
    });
  return location;
}

/**
 * `--since`/`--until`: an RFC 3339 date-time with its time zone, or a date (midnight UTC), as an ISO
 * string in UTC. A time without a zone is refused, not read in this machine's zone: an export for an
 * auditor must not depend on where it ran.
 */
function isoTime(option: string): (value: string) => string {
  return (value) => {
    const text = value.trim();
    if (isDate(text)) return `${text}T00:00:00.000Z`;
    if (isDateTime(text)) return new Date(Date.parse(text)).toISOString();
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected ${option} to be an RFC 3339 date-time with a time zone (2026-11-25T08:00:00Z) or a date (2026-11-25, UTC), got ${JSON.stringify(value)}`,
      { field: option },
    );
  };
}

/** `--anchor`: a record hash (64 hex digits) kept from an earlier `audit verify` (its `headHash`). */
function anchorHash(value: string): string {
  const hash = value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    throw new InvalidArgumentError(
      `Expected a SHA-256 hash of 64 hex digits, got ${JSON.stringify(value.slice(0, 80))}.`,
    );
  }
  return hash;
}

/** A line that is no audit record: a coded error, on stdout as the verdict and on stderr. */
function badLine(path: string, line: number, problem: string): number {
  const error = new CognigyResetError('CR_ERR_AUDIT_BAD_LINE', `${path} line ${line}: ${problem}`);
  process.stdout.write(`${JSON.stringify({ ok: false, line, code: error.code, problem })}\n`);
  process.stderr.write(errorLine(error));
  return 1;
}

/**
 * Verifies an exported JSONL file offline: each record's fields and hash, and the links between
 * consecutive ones, from the genesis hash. A gap in `seq` fails it: nothing in the file proves that a
 * missing record was filtered out rather than deleted. `allowGaps` (a filtered export) accepts gaps and
 * checks the links within each run of consecutive records; the verdict then says it is not complete.
 */
async function verifyFile(path: string, anchor: string | undefined, allowGaps: boolean): Promise<number> {
  const checker = new ChainChecker(
    allowGaps ? undefined : { prevHash: GENESIS_HASH, seq: 1 },
    allowGaps,
    anchor,
  );
  let lineNo = 0;
  for await (const { text, line } of readLines(createReadStream(path), path)) {
    lineNo = line;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return badLine(path, line, 'not JSON');
    }
    const twice = duplicateKey(text);
    if (twice !== undefined) return badLine(path, line, `the field ${safeJson(twice)} appears twice`);
    const shape = recordShapeProblem(value);
    if (shape !== undefined) return badLine(path, line, shape);
    const record = value as AuditRecord;
    const problem = checker.check(record);
    if (problem !== undefined) {
      process.stdout.write(`${JSON.stringify({ ok: false, line, firstBad: problem })}\n`);
      return 1;
    }
  }
  const firstBad = checker.anchorProblem(true);
  if (firstBad !== undefined) {
    process.stdout.write(`${JSON.stringify({ ok: false, records: checker.count, firstBad })}\n`);
    return 1;
  }
  // The last record the file holds: a file cut short verifies on its own, so an auditor compares this
  // with a headHash kept from `audit verify --state` (or passes it as --anchor). anchorSeq is left out
  // of the line when undefined (no --anchor).
  const { count: records, anchorSeq, lastSeq, lastHash, gaps } = checker;
  // With --allow-gaps, `complete` says whether the file is one unbroken chain from the genesis hash.
  const extent = allowGaps ? { gaps, complete: gaps === 0 } : {};
  process.stdout.write(
    `${JSON.stringify({ ok: true, records, lines: lineNo, lastSeq, lastHash, anchorSeq, ...extent })}\n`,
  );
  return 0;
}

export function auditCommand(): Command {
  const audit = new Command('audit').description('the tamper-evident audit log in the store');
  audit
    .command('verify')
    .description('exit 0 when the chain is intact; 1 and the first bad record if not')
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
    .option('--file <path>', 'verify an exported JSONL file instead (offline)')
    .option(
      '--allow-gaps',
      'with --file: accept gaps in seq (a filtered export); the verdict says it is not complete',
      false,
    )
    .option(
      '--anchor <hash>',
      'a headHash kept from an earlier verify: the chain must still hold the record with that hash',
      anchorHash,
    )
    .action(async (flags: StoreFlags & { file?: string; anchor?: string; allowGaps: boolean }) => {
      if (flags.file !== undefined) {
        process.exitCode = await verifyFile(flags.file, flags.anchor, flags.allowGaps);
        return;
      }
      if (flags.allowGaps) {
        throw new CognigyResetError('CR_ERR_OPT_INVALID', '--allow-gaps applies to --file only', {
          field: '--allow-gaps',
        });
      }
      const state = await openStore(storeToRead(flags), { readOnly: true });
      try {
        const result = await state.verifyAudit({ anchor: flags.anchor });
        // anchorSeq is left out of the line when undefined (no --anchor).
        const { records, headSeq, headHash, anchorSeq } = result;
        process.stdout.write(
          `${JSON.stringify(
            result.ok
              ? { ok: true, records, headSeq, headHash, anchorSeq }
              : { ok: false, records, firstBad: result.problem },
          )}\n`,
        );
        process.exitCode = result.ok ? 0 : 1;
      } finally {
        await state.close();
      }
    });
  audit
    .command('export')
    .description('stream the audit log as JSON Lines (with the chain fields) or CSV')
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .option('--session <id>', 'only this session')
    .option('--job <id>', 'only this job')
    .option('--since <time>', 'records at or after this time', isoTime('--since'))
    .option('--until <time>', 'records before this time', isoTime('--until'))
    .addOption(new Option('--outcome <outcome>', 'only this outcome').choices(['reset', 'failed', 'skipped']))
    .action(
      async (
        flags: StoreFlags & {
          format: 'jsonl' | 'csv';
          session?: string;
          job?: string;
          since?: string;
          until?: string;
          outcome?: string;
        },
      ) => {
        if (flags.since !== undefined && flags.until !== undefined && flags.since >= flags.until) {
          throw new CognigyResetError(
            'CR_ERR_OPT_INVALID',
            `--since (${flags.since}) must be before --until (${flags.until}): no record can match`,
            { field: '--since' },
          );
        }
        const state = await openStore(storeToRead(flags), { readOnly: true });
        const out = new LineWriter(process.stdout, stdoutGone.signal);
        try {
          if (flags.format === 'csv') out.write(csvHeader());
          for await (const record of state.auditRecords({
            sessionId: flags.session,
            jobId: flags.job,
            since: flags.since,
            until: flags.until,
            outcome: flags.outcome,
          })) {
            out.write(flags.format === 'csv' ? csvLine(record) : safeJson(record));
            // A slow reader is waited for: the export never holds more than a few writes in memory.
            const drained = out.drained();
            if (drained !== undefined) await drained;
            // The reader went away (`| head`): nobody reads the rest.
            if (out.closed) break;
          }
          out.flush();
        } catch (err) {
          out.flush();
          throw err;
        } finally {
          await state.close();
        }
      },
    );
  return audit;
}

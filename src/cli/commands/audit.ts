/** `cognigy-reset audit verify|export`: the governance audit log in the state file. */
import { createReadStream, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type AuditRecord, ChainChecker } from '../../audit/chain.js';
import { auditRecords, csvHeader, csvLine, verifyAudit } from '../../audit/store.js';
import { CognigyResetError } from '../../errors.js';
import { openStateFile } from '../../state/state-file.js';
import { isDate, isDateTime } from '../../protocol/schemas.js';
import { readLines } from '../input.js';
import { stdoutGone } from '../stdout-gone.js';
import { LineWriter } from '../line-writer.js';
import { safeJson } from '../../util/printable.js';
import { DEFAULT_STATE_FILE } from './reset.js';

function statePath(flag: string | undefined): string {
  const path = resolve(flag ?? process.env['COGNIGY_RESET_STATE'] ?? DEFAULT_STATE_FILE);
  if (!existsSync(path))
    throw new CognigyResetError('CR_ERR_OPT_INVALID', `no state file at ${path}`, { field: '--state' });
  return path;
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

/** Verifies an exported JSONL file offline: each record's hash, and the links between consecutive ones. */
async function verifyFile(path: string, anchor: string | undefined): Promise<number> {
  const checker = new ChainChecker(undefined, true, anchor);
  let lineNo = 0;
  for await (const { text, line } of readLines(createReadStream(path), path)) {
    lineNo = line;
    let record: AuditRecord;
    try {
      record = JSON.parse(text) as AuditRecord;
    } catch {
      process.stdout.write(`${JSON.stringify({ ok: false, line, problem: 'not JSON' })}\n`);
      return 1;
    }
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
  const { count: records, anchorSeq, lastSeq, lastHash } = checker;
  process.stdout.write(
    `${JSON.stringify({ ok: true, records, lines: lineNo, lastSeq, lastHash, anchorSeq })}\n`,
  );
  return 0;
}

export function auditCommand(): Command {
  const audit = new Command('audit').description('the tamper-evident audit log in the state file');
  audit
    .command('verify')
    .description('exit 0 when the chain is intact; 1 and the first bad record if not')
    .option('--state <path>', `the state file (env COGNIGY_RESET_STATE; default ./${DEFAULT_STATE_FILE})`)
    .option('--file <path>', 'verify an exported JSONL file instead (offline)')
    .option(
      '--anchor <hash>',
      'a headHash kept from an earlier verify: the chain must still hold the record with that hash',
      anchorHash,
    )
    .action(async (flags: { state?: string; file?: string; anchor?: string }) => {
      if (flags.file !== undefined) {
        process.exitCode = await verifyFile(flags.file, flags.anchor);
        return;
      }
      const db = openStateFile(statePath(flags.state));
      try {
        const result = verifyAudit(db, flags.anchor);
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
        db.close();
      }
    });
  audit
    .command('export')
    .description('stream the audit log as JSON Lines (with the chain fields) or CSV')
    .option('--state <path>', `the state file (env COGNIGY_RESET_STATE; default ./${DEFAULT_STATE_FILE})`)
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .option('--session <id>', 'only this session')
    .option('--job <id>', 'only this job')
    .option('--since <time>', 'records at or after this time', isoTime('--since'))
    .option('--until <time>', 'records before this time', isoTime('--until'))
    .addOption(new Option('--outcome <outcome>', 'only this outcome').choices(['reset', 'failed', 'skipped']))
    .action(
      async (flags: {
        state?: string;
        format: 'jsonl' | 'csv';
        session?: string;
        job?: string;
        since?: string;
        until?: string;
        outcome?: string;
      }) => {
        if (flags.since !== undefined && flags.until !== undefined && flags.since >= flags.until) {
          throw new CognigyResetError(
            'CR_ERR_OPT_INVALID',
            `--since (${flags.since}) must be before --until (${flags.until}): no record can match`,
            { field: '--since' },
          );
        }
        const db = openStateFile(statePath(flags.state));
        const out = new LineWriter(process.stdout, stdoutGone.signal);
        try {
          if (flags.format === 'csv') out.write(csvHeader());
          for (const record of auditRecords(db, {
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
        } finally {
          db.close();
        }
      },
    );
  return audit;
}

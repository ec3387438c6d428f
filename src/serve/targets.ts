/**
 * A job's sessions: ids given inline, or an uploaded CSV / JSON Lines body spooled to a file as it arrives
 * (flat memory, whatever its size), checked once by the runner's row parser, and read again by the job.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CognigyResetError } from '../errors.js';
import type { BulkTarget } from '../reset/bulk.js';
import { planReset } from '../model/plan.js';
import type { JobSpec } from '../runner/types.js';
import {
  countTargetsInFile,
  inputIdProblem,
  openFile,
  parseTargets,
  replacementProblem,
} from '../targets/rows.js';
import { createTransport } from '../transports/create.js';
import type { TargetField } from '../transports/transport.js';

export interface TargetSource {
  total: number;
  batches(stop: AbortSignal): AsyncIterable<readonly BulkTarget[]> | Iterable<readonly BulkTarget[]>;
}

const BATCH = 256;

/** What each row must carry for this spec's transport and plan. */
export async function requiredFieldsFor(spec: JobSpec): Promise<TargetField[]> {
  const probe = createTransport(spec, {}, { dryRun: true });
  try {
    return probe.requiredFields(planReset(spec.plan, probe.capabilities));
  } finally {
    await probe.close();
  }
}

/**
 * A session id as the API takes it: as the CLI takes an input line's, and never holding U+FFFD, which a
 * client's encoder writes for what it could not encode: such an id cannot be told from a damaged one.
 */
export function apiIdProblem(id: string): string | undefined {
  return inputIdProblem(id) ?? replacementProblem(id);
}

/** Checks ids given inline, and writes them to `path` as JSON Lines: a job reads every input from a file. */
export async function spoolIds(
  ids: readonly string[],
  path: string,
  required: readonly TargetField[],
): Promise<void> {
  if (required.length > 0)
    throw new CognigyResetError(
      'CR_ERR_OPT_MISSING',
      `sessions: this transport needs ${required.join(', ')} for each session: upload CSV or JSON Lines`,
      { field: 'sessions' },
    );
  ids.forEach((id, i) => {
    const problem = apiIdProblem(id);
    if (problem !== undefined)
      throw new CognigyResetError('CR_ERR_OPT_SESSION_ID', `sessions[${i}]: ${problem}`, {
        field: `sessions[${i}]`,
      });
  });
  const out = createWriteStream(path);
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < ids.length; i += BATCH)
          yield ids
            .slice(i, i + BATCH)
            .map((sessionId) => `${JSON.stringify({ sessionId })}\n`)
            .join('');
      })(),
    ),
    out,
  );
}

/** A job's sessions, read from its spooled file in batches. */
export function fileSource(path: string, total: number, required: readonly TargetField[]): TargetSource {
  return { total, batches: (stop) => parseTargets(openFile(path), 'upload', required, stop) };
}

/**
 * Spools an upload to `path`, at most `maxBytes`, hashing it as it goes; then checks every row. Resolves
 * with the row count and the body's SHA-256 (for Idempotency-Key).
 */
export async function uploadSource(
  body: Readable,
  path: string,
  maxBytes: number,
  required: readonly TargetField[],
): Promise<{ total: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        callback(
          new CognigyResetError('CR_ERR_API_TOO_LARGE', `the upload is larger than ${maxBytes} bytes`),
        );
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(body, meter, createWriteStream(path));
  const total = await countTargetsInFile(path, required).catch((err: unknown) => {
    // The file's path is the service's own: the message names the upload instead.
    if (err instanceof CognigyResetError)
      throw new CognigyResetError(err.code, err.message.split(path).join('upload'), { field: 'body' });
    throw err;
  });
  return { sha256: hash.digest('hex'), total };
}

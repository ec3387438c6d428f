/**
 * A job's sessions from a selector: the rows the tenant's OData data matches are listed once, into the
 * job's upload file (JSON Lines), before the job is made. So the count is known before anything is sent,
 * the job works through exactly the list that was counted, and a restart or a resume reads the same list.
 * As with the CLI's `reset --flow`, sending needs the count confirmed (`expect` within `expectMargin` per
 * cent, or `confirm: true`); a dry run needs neither.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { CognigyResetError } from '../errors.js';
import { describeSpecSelector, selectRows } from '../runner/select-targets.js';
import type { Credentials, JobSpec } from '../runner/types.js';
import { refuse } from './problem.js';

export interface Confirmation {
  /** The number of sessions the caller expects the selector to match. */
  expect?: number | undefined;
  /** How far off `expect` the count may be, in per cent of it. @default 5 */
  expectMargin?: number | undefined;
  /** Send to every session the selector matches, whatever their number. */
  confirm?: boolean | undefined;
}

export const DEFAULT_EXPECT_MARGIN = 5;

/** Lists the spec's selection into `path`; resolves with the count and the selector's description. */
export async function spoolSelection(
  spec: JobSpec,
  credentials: Credentials,
  path: string,
  log: Logger | undefined,
): Promise<{ count: number; description: string }> {
  const description = describeSpecSelector(spec.selector!);
  const out = createWriteStream(path, { mode: 0o600 });
  let count = 0;
  try {
    const rows = selectRows(spec, credentials, {
      onRetry: (info) => log?.warn(info, 'OData request failed; retrying'),
    });
    for await (const batch of rows) {
      const text = batch
        .map(({ sessionId, userId, flowReferenceId, entrypoint }) =>
          JSON.stringify({ sessionId, userId, flowReferenceId, entrypoint }),
        )
        .join('\n');
      count += batch.length;
      if (!out.write(`${text}\n`)) await once(out, 'drain');
    }
  } catch (err) {
    out.destroy();
    if (!(err instanceof CognigyResetError)) throw err;
    throw new CognigyResetError(
      err.code,
      `${err.message}; selecting stopped after ${count} sessions (${description}): no job was made`,
      { cause: err, ...(err.field === undefined ? {} : { field: err.field }) },
    );
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  log?.info({ selector: description, count }, 'sessions selected');
  return { count, description };
}

/** Refuses (422, with the count) a selection the caller has not confirmed; nothing is sent. */
export function checkConfirmed(count: number, description: string, given: Confirmation): void {
  if (given.expect !== undefined) {
    const margin = given.expectMargin ?? DEFAULT_EXPECT_MARGIN;
    if (Math.abs(count - given.expect) > (given.expect * margin) / 100)
      throw withCount(
        refuse(
          'CR_ERR_SELECT_COUNT_MISMATCH',
          `${count} sessions match ${description}, expected ${given.expect} ± ${margin}%: no job was made`,
          'expect',
        ),
        count,
      );
    return;
  }
  if (given.confirm !== true)
    throw withCount(
      refuse(
        'CR_ERR_SELECT_UNCONFIRMED',
        `${count} sessions match ${description}; no job was made: send again with "expect": ${count} or "confirm": true (or "dryRun": true to look first)`,
        'confirm',
      ),
      count,
    );
}

/** The count rides on the refusal: its problem document carries it. */
function withCount(err: CognigyResetError, count: number): CognigyResetError {
  return Object.assign(err, { count });
}

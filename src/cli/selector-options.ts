/**
 * The selector flags `sessions list` and `reset` share, and the clients they make. The OData key comes
 * from the environment (or a file), never a flag; it is a secret like a token.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { withFlagNames } from './flag-names.js';
import { CognigyResetError } from '../errors.js';
import { checkSelector, ODataClient, RestLookup, type Selector } from '../select/index.js';
import { integerIn } from './parse.js';

export interface SelectorFlags {
  flow?: string;
  endpoint?: string;
  node?: string;
  since?: string;
  until?: string;
  odataUrl?: string;
  odataKeyFile?: string;
  apiUrl?: string;
  pageSize: number;
  allowInsecure: boolean;
}

export function addSelectorOptions(command: Command, { withApiUrl }: { withApiUrl: boolean }): Command {
  command
    .option('--flow <ref>', 'sessions with a step of this Flow (its reference id) in the window')
    .option('--endpoint <ref>', 'sessions started on this endpoint (its reference id) in the window')
    .option('--node <ref>', 'sessions whose last recorded step is this node, in the window')
    .option('--since <iso>', 'window start, inclusive (RFC 3339)')
    .option('--until <iso>', 'window end, exclusive (RFC 3339)')
    .option(
      '--odata-url <url>',
      'Cognigy OData endpoint (env COGNIGY_ODATA_URL); key in env COGNIGY_ODATA_KEY',
    )
    .option('--odata-key-file <path>', 'read the OData key from this file (else env COGNIGY_ODATA_KEY)')
    .option('--page-size <n>', 'records per OData page', integerIn(1, 10_000), 1000);
  if (withApiUrl)
    command.option('--api-url <url>', 'Cognigy REST API, to complete --endpoint rows (env COGNIGY_API_URL)');
  return command;
}

export function hasSelector(flags: Partial<SelectorFlags>): boolean {
  return flags.flow !== undefined || flags.endpoint !== undefined || flags.node !== undefined;
}

/** Maps a library field to its flag in messages. */
const flagged = (err: unknown): unknown => withFlagNames(err);

export interface SelectorSetup {
  selector: Selector;
  odata: ODataClient;
  rest: RestLookup | undefined;
  /** Secrets the logger and messages must never show. */
  secrets: string[];
}

export function selectorSetup(
  flags: SelectorFlags,
  env: NodeJS.ProcessEnv,
  onRetry?: ConstructorParameters<typeof ODataClient>[0]['onRetry'],
): SelectorSetup {
  const given = (['flow', 'endpoint', 'node'] as const).filter((k) => flags[k] !== undefined);
  if (given.length > 1) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `give one of --flow, --endpoint, --node, not ${given.map((k) => `--${k}`).join(' and ')}`,
      {
        field: `--${given[1]!}`,
      },
    );
  }
  if (given.length === 0) {
    throw new CognigyResetError(
      'CR_ERR_OPT_MISSING',
      'a selector is required: --flow, --endpoint or --node',
      {
        field: '--flow',
      },
    );
  }
  try {
    const selector = checkSelector(flags);
    const odataUrl = flags.odataUrl ?? env['COGNIGY_ODATA_URL'];
    if (odataUrl === undefined || odataUrl === '') {
      throw new CognigyResetError(
        'CR_ERR_OPT_MISSING',
        'a selector needs --odata-url (or COGNIGY_ODATA_URL)',
        {
          field: '--odata-url',
        },
      );
    }
    const key = readKey(flags.odataKeyFile, env);
    const secrets = [key];
    let rest: RestLookup | undefined;
    if (selector.kind === 'endpoint') {
      const apiUrl = flags.apiUrl ?? env['COGNIGY_API_URL'];
      const apiKey = env['COGNIGY_API_KEY'];
      if (apiUrl === undefined || apiUrl === '' || apiKey === undefined || apiKey === '') {
        throw new CognigyResetError(
          'CR_ERR_OPT_MISSING',
          '--endpoint reads the endpoint from the REST API: set --api-url (or COGNIGY_API_URL) and COGNIGY_API_KEY',
          { field: '--api-url' },
        );
      }
      secrets.push(apiKey);
      rest = new RestLookup({ apiUrl, apiKey, allowInsecure: flags.allowInsecure });
    }
    const odata = new ODataClient({
      url: odataUrl,
      key,
      allowInsecure: flags.allowInsecure,
      ...(onRetry === undefined ? {} : { onRetry }),
    });
    return { selector, odata, rest, secrets };
  } catch (err) {
    throw flagged(err);
  }
}

function readKey(file: string | undefined, env: NodeJS.ProcessEnv): string {
  let key: string | undefined;
  if (file !== undefined) {
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (cause) {
      throw new CognigyResetError(
        'CR_ERR_OPT_INVALID',
        `cannot read --odata-key-file ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
        { field: '--odata-key-file', cause },
      );
    }
  } else key = env['COGNIGY_ODATA_KEY'];
  if (key === undefined || key === '') {
    throw new CognigyResetError(
      'CR_ERR_AUTH_NO_TOKEN',
      'no OData key: set COGNIGY_ODATA_KEY or pass --odata-key-file',
      {
        field: 'COGNIGY_ODATA_KEY',
      },
    );
  }
  return key;
}

/**
 * The store the service and `keys` use: `--store LOCATION` or `--state PATH` (env COGNIGY_RESET_STATE;
 * default the CLI's state file). Jobs' ledgers and audit records, and the API keys, live in it; the
 * service keeps its jobs' outcome files and uploads in a folder beside it.
 */
import { resolve } from 'node:path';
import { CognigyResetError } from '../errors.js';
import { openStore, type Store } from '../store/index.js';

export const DEFAULT_STATE_FILE = 'cognigy-reset.sqlite';

export interface StoreFlags {
  store?: string | undefined;
  state?: string | undefined;
}

/** The store's location, and the folder of the service's own files. */
export function storeLocation(flags: StoreFlags, env: NodeJS.ProcessEnv): { location: string; dir: string } {
  if (flags.store !== undefined && flags.state !== undefined)
    throw new CognigyResetError('CR_ERR_OPT_INVALID', 'give --store or --state, not both', {
      field: '--store',
    });
  const given = flags.store ?? flags.state ?? env['COGNIGY_RESET_STATE'] ?? DEFAULT_STATE_FILE;
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(given);
  const location = url ? given : resolve(given);
  return { location, dir: url ? resolve('cognigy-reset.jobs') : `${location}.jobs` };
}

export function openServiceStore(location: string): Promise<Store> {
  return openStore(location);
}

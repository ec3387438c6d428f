/**
 * Where a command keeps its state (DESIGN.md §6): `--store URL` (env `COGNIGY_RESET_STORE`) — a path or
 * `sqlite:PATH` for an SQLite state file, or a `postgres://` URL for a PostgreSQL database — or
 * `--state PATH` (env `COGNIGY_RESET_STATE`), its synonym; `./cognigy-reset.sqlite` by default. Every
 * command that keeps state resolves it here, the same way.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CognigyResetError } from '../errors.js';
import { isPostgresUrl } from '../store/index.js';

export const DEFAULT_STATE_FILE = 'cognigy-reset.sqlite';

export interface StoreFlags {
  store?: string | undefined;
  state?: string | undefined;
}

export interface StoreChoice {
  /** What `openStore` takes: an absolute path, or the URL. */
  location: string;
  /** The SQLite state file; undefined for a database server, which has no file here. */
  path: string | undefined;
  /** The folder of the service's own files: beside a state file, in the working directory otherwise. */
  dir: string;
}

export const STORE_HELP =
  'the store: a state file path, sqlite:PATH or postgres://USER@HOST/DB (env COGNIGY_RESET_STORE; default ./cognigy-reset.sqlite)';
export const STATE_HELP = 'the SQLite state file, as --store (env COGNIGY_RESET_STATE)';

/** Adds `--store` and `--state` to a command. */
export function storeOptions(command: Command): Command {
  return command.option('--store <url>', STORE_HELP).option('--state <path>', STATE_HELP);
}

export function resolveStore(flags: StoreFlags, env: NodeJS.ProcessEnv): StoreChoice {
  if (flags.store !== undefined && flags.state !== undefined) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', 'give --store or --state, not both', {
      field: '--store',
    });
  }
  // An empty variable counts as unset; an empty flag is a mistake.
  const fromEnv = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const [field, given] =
    flags.store !== undefined
      ? ['--store', flags.store]
      : flags.state !== undefined
        ? ['--state', flags.state]
        : fromEnv('COGNIGY_RESET_STORE') !== undefined
          ? ['COGNIGY_RESET_STORE', fromEnv('COGNIGY_RESET_STORE')!]
          : ['COGNIGY_RESET_STATE', fromEnv('COGNIGY_RESET_STATE') ?? DEFAULT_STATE_FILE];
  if (given.trim() === '') {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected ${field} to name a store, got an empty value`,
      {
        field,
      },
    );
  }
  if (isPostgresUrl(given)) return { location: given, path: undefined, dir: resolve('cognigy-reset.jobs') };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(given)?.[1];
  if (scheme !== undefined) {
    // The URL itself is not shown: it may carry a password.
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected ${field} to be a path, sqlite:PATH or a postgres:// URL, got a URL of scheme ${JSON.stringify(scheme.slice(0, 20))}`,
      { field },
    );
  }
  const path = resolve(given.replace(/^sqlite:/i, ''));
  return { location: path, path, dir: `${path}.jobs` };
}

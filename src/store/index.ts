/**
 * The store: everything durable, behind the port of `port.ts`. `openStore` picks the backend from the
 * location: a path is an SQLite state file (`sqlite/`).
 */
import { CognigyResetError } from '../errors.js';
import type { SeenIds } from '../reset/seen-ids.js';
import type { Store } from './port.js';
import { SeenIdsFile } from './sqlite/seen-ids-file.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

export type * from './port.js';

/** How long a job's lease lasts without a heartbeat, by default. */
export const DEFAULT_LEASE_MS = 60_000;

export interface OpenStoreOptions {
  /** Read only: nothing is written, and (SQLite) no byte of the file changes. */
  readOnly?: boolean | undefined;
  /** SQLite: commit outcomes on a writer thread. @default true */
  writerThread?: boolean | undefined;
}

/** Opens the store at `location`: a path names an SQLite state file, created and upgraded as needed. */
// eslint-disable-next-line @typescript-eslint/require-await -- async: a failure to open is a rejection
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  // The backend branch point: a postgres:// URL will pick the PostgreSQL backend here.
  if (/^postgres(ql)?:\/\//i.test(location)) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      'a PostgreSQL store is not supported by this version of cognigy-reset: give a state file path',
    );
  }
  return SqliteStore.open(location, options);
}

/**
 * The ids a run has taken, in a private temporary file: exact, and flat in memory for any number of ids.
 * The file is removed by `close()`.
 */
export function createSeenIds(): SeenIds & { close(): void } {
  return new SeenIdsFile();
}

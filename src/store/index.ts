/**
 * The store: everything durable, behind the port of `port.ts`. `openStore` picks the backend from the
 * location: a `postgres://` URL is a PostgreSQL database (`postgres/`), shared by every process that
 * names it; a path (or `sqlite:PATH`) is an SQLite state file (`sqlite/`).
 */
import { CognigyResetError } from '../errors.js';
import type { SeenIds } from '../reset/seen-ids.js';
import type { Store } from './port.js';
import { isPostgresUrl } from './postgres/url.js';
import { SeenIdsFile } from './sqlite/seen-ids-file.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

export { isPostgresUrl, redactStoreUrl } from './postgres/url.js';

export type * from './port.js';

/** How long a job's lease lasts without a heartbeat, by default. */
export const DEFAULT_LEASE_MS = 60_000;

export interface OpenStoreOptions {
  /** Read only: nothing is written, and (SQLite) no byte of the file changes. */
  readOnly?: boolean | undefined;
  /** Commit outcomes on a writer thread (with its own connection). @default true */
  writerThread?: boolean | undefined;
}

/**
 * Opens the store at `location`: a `postgres://` (or `postgresql://`) URL names a PostgreSQL database,
 * whose schema is created and migrated as needed; a path, or `sqlite:PATH`, an SQLite state file, created
 * and upgraded as needed. Another scheme is refused (`CR_ERR_STATE_OPEN`).
 */
// async: a failure to open, of either backend, is a rejection
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (isPostgresUrl(location)) {
    // Loaded only for a PostgreSQL store: a run on a state file starts without the driver.
    const { PgStore } = await import('./postgres/pg-store.js');
    return PgStore.open(location, options);
  }
  if (/^sqlite:/i.test(location)) return SqliteStore.open(location.slice('sqlite:'.length), options);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1];
  if (scheme !== undefined) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `a store of scheme ${JSON.stringify(scheme.slice(0, 20))} is not supported: give a postgres:// URL or a state file path`,
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

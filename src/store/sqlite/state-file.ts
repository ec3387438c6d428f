/**
 * The SQLite state file (`--state`): the job ledger, the audit log and the analytics outbox. It is
 * recognised by its application id; a file that is not ours, is damaged, or was written by a newer
 * version gets a clear error and is never overwritten.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CognigyResetError } from '../../errors.js';
import { MIGRATIONS } from './migrations.js';

/** "CRST" */
export const APPLICATION_ID = 0x43525354;
export const SCHEMA_VERSION = 9;
/** The page size a new state file is created with. */
export const NEW_FILE_PAGE_SIZE = 8192;

const SQLITE_MAGIC = 'SQLite format 3\u0000';

/** Whether a file that is not empty (an empty one is a new database) starts as SQLite's do. */
function looksLikeSqlite(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(16);
    return readSync(fd, buffer, 0, 16, 0) === 16 && buffer.toString('latin1') === SQLITE_MAGIC;
  } finally {
    closeSync(fd);
  }
}

export type StateDb = Database.Database;

/** Opens (creating if needed) and migrates the state file. */
export function openStateFile(path: string): StateDb {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat !== undefined && !stat.isFile()) {
    // A directory, a device (/dev/null), a FIFO (which would block the first read): never SQLite's.
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `cannot use ${path} as the state file: it is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}`,
    );
  }
  const existed = stat !== undefined && stat.size > 0;
  if (existed && !looksLikeSqlite(path)) {
    throw new CognigyResetError(
      'CR_ERR_STATE_CORRUPT',
      `${path} is not a cognigy-reset state file (not SQLite)`,
    );
  }
  let db: StateDb;
  const dir = dirname(path);
  if (!existsSync(dir)) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `cannot create state file ${path}: the directory ${dir} does not exist`,
    );
  }
  try {
    // Another process may hold a lock for a moment (creating or migrating the same file): wait for it.
    db = new Database(path, { timeout: 5000 });
  } catch (cause) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `cannot open state file ${path}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  try {
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (existed && appId !== APPLICATION_ID) {
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as {
        n: number;
      };
      if (tables.n > 0 || appId !== 0) {
        throw new CognigyResetError(
          'CR_ERR_STATE_CORRUPT',
          `${path} is an SQLite file of another application`,
        );
      }
    }
    if (version > SCHEMA_VERSION) {
      throw new CognigyResetError(
        'CR_ERR_STATE_NEWER',
        `${path} has schema version ${version}; this cognigy-reset understands up to ${SCHEMA_VERSION}: upgrade cognigy-reset`,
      );
    }
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      throw new CognigyResetError(
        'CR_ERR_STATE_CORRUPT',
        `${path} is damaged (quick_check: ${String(check).slice(0, 120)})`,
      );
    }
    // A new file gets 8 KiB pages: the audit log appends a few hundred bytes a reset, and larger pages
    // mean fewer WAL frames, writes and B-tree pages per record (docs/benchmarks.md compares the sizes).
    // It must be set before WAL mode writes the header; an existing file keeps its size (changing it
    // means rewriting the file).
    if (!existed) db.pragma(`page_size = ${NEW_FILE_PAGE_SIZE}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    if (version < SCHEMA_VERSION) {
      // One write transaction that reads the version again: two processes creating or upgrading the same
      // file at once run each step once (the second finds the work done).
      db.transaction(() => {
        const current = db.pragma('user_version', { simple: true }) as number;
        const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as {
          n: number;
        };
        if (current === 0 && tables.n > 0)
          throw new CognigyResetError(
            'CR_ERR_STATE_CORRUPT',
            `state file ${path} holds tables but no schema version: it is not a state file of this tool, or its version was lost`,
          );
        for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
          const step = MIGRATIONS[v]!;
          if (typeof step === 'string') db.exec(step);
          else step(db);
        }
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
        db.pragma(`application_id = ${APPLICATION_ID}`);
      }).immediate();
    }
    return db;
  } catch (err) {
    db.close();
    if (err instanceof CognigyResetError) throw err;
    // Only SQLite's own verdict says damaged; a file it cannot open, read, lock or write is not.
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
      throw new CognigyResetError(
        'CR_ERR_STATE_CORRUPT',
        `state file ${path} is damaged: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `cannot use ${path} as the state file: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

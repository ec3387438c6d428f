/**
 * The state file opened to be read, never written: what `audit verify` and `audit export` use. They must
 * work on a read-only copy handed to an auditor and change no byte of the file they check.
 *
 * SQLite cannot read a WAL-mode file in place when its `-wal` is gone (a run that ended cleanly) without
 * creating a `-wal` and `-shm` beside it, and this build of SQLite has no `immutable` URI parameter. Such
 * a file, and one of an older schema (which must be migrated to be read), is read from a private copy in
 * the temporary directory; the copy is removed on `close()`. A file whose `-wal` and `-shm` are there (a
 * run holds it, or one was killed) is read in place through that log, read-only.
 */
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { CognigyResetError } from '../../errors.js';
import { APPLICATION_ID, openStateFile, SCHEMA_VERSION, type StateDb } from './state-file.js';

export interface ReadOnlyState {
  db: StateDb;
  /** Closes the database and removes the private copy, if one was made. */
  close(): void;
}

/** The columns each table `audit` reads must have, in the current schema. */
const TABLES: Record<string, readonly string[]> = {
  audit_records: ['seq', 'record', 'hash'],
  audit_head: ['id', 'seq', 'hash'],
};

const SQLITE_MAGIC = 'SQLite format 3\u0000';

/** The first 100 bytes: SQLite's header (magic, and bytes 18–19, the WAL format versions). */
function header(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(100);
    const read = readSync(fd, buffer, 0, 100, 0);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

export function openStateReadOnly(path: string): ReadOnlyState {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined || !stat.isFile()) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `cannot read ${path} as the state file: ${stat === undefined ? 'it does not exist' : stat.isDirectory() ? 'it is a directory' : 'it is not a regular file'}`,
    );
  }
  let head: Buffer;
  try {
    head = header(path);
  } catch (cause) {
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause },
    );
  }
  if (head.length < 100 || head.subarray(0, 16).toString('latin1') !== SQLITE_MAGIC) {
    throw new CognigyResetError(
      'CR_ERR_STATE_CORRUPT',
      `${path} is not a cognigy-reset state file (${head.length === 0 ? 'empty' : 'not SQLite'})`,
    );
  }
  const wal = head[18] === 2 || head[19] === 2;
  // In place only through a log and index that are there already: SQLite would create them otherwise.
  const inPlace = !wal || (existsSync(`${path}-wal`) && existsSync(`${path}-shm`));
  let copy = inPlace ? undefined : privateCopy(path);
  let db = openReadOnly(copy?.path ?? path, path);
  let version: number;
  try {
    version = check(db, path);
  } catch (err) {
    db.close();
    // A log left by a killed run, in a directory where its -shm cannot be made: read a copy of both.
    if (copy !== undefined || !cannotOpenInPlace(err)) throw asStateError(path, err);
    copy = privateCopy(path);
    db = openReadOnly(copy.path, path);
    try {
      version = check(db, path);
    } catch (again) {
      db.close();
      copy.remove();
      throw asStateError(path, again);
    }
  }
  try {
    if (version < SCHEMA_VERSION) {
      // An older schema is read as this version reads it: migrated, in a private copy.
      db.close();
      const upgraded = copy ?? privateCopy(path);
      try {
        openStateFile(upgraded.path).close();
      } catch (cause) {
        upgraded.remove();
        throw new CognigyResetError(
          'CR_ERR_STATE_CORRUPT',
          `${path} has schema version ${version}, and its tables are not what that version made: it is damaged`,
          { cause },
        );
      }
      db = openReadOnly(upgraded.path, path);
      return finish(db, path, upgraded);
    }
    return finish(db, path, copy);
  } catch (err) {
    if (db.open) db.close();
    copy?.remove();
    throw asStateError(path, err);
  }
}

function finish(db: StateDb, path: string, copy: { remove(): void } | undefined): ReadOnlyState {
  try {
    checkTables(db, path);
  } catch (err) {
    db.close();
    copy?.remove();
    throw err;
  }
  return {
    db,
    close: () => {
      if (db.open) db.close();
      copy?.remove();
    },
  };
}

function openReadOnly(where: string, path: string): StateDb {
  try {
    return new Database(where, { readonly: true, fileMustExist: true, timeout: 5000 });
  } catch (cause) {
    throw asStateError(path, cause);
  }
}

function cannotOpenInPlace(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === 'string' && (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY'))
  );
}

/** Checks what the file is; returns its schema version. */
function check(db: StateDb, path: string): number {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== APPLICATION_ID) {
    throw new CognigyResetError('CR_ERR_STATE_CORRUPT', `${path} is not a cognigy-reset state file`);
  }
  if (version > SCHEMA_VERSION) {
    throw new CognigyResetError(
      'CR_ERR_STATE_NEWER',
      `${path} has schema version ${version}; this cognigy-reset understands up to ${SCHEMA_VERSION}: upgrade cognigy-reset`,
    );
  }
  const quick = db.pragma('quick_check', { simple: true });
  if (quick !== 'ok') {
    throw new CognigyResetError('CR_ERR_STATE_CORRUPT', `${path} is damaged (SQLite's quick_check failed)`);
  }
  return version;
}

/** A file that claims the current schema but lacks a table or column the audit reads is damaged. */
function checkTables(db: StateDb, path: string): void {
  const columns = db.prepare('SELECT name FROM pragma_table_info(?)');
  for (const [table, wanted] of Object.entries(TABLES)) {
    const have = new Set((columns.all(table) as { name: string }[]).map((c) => c.name));
    const missing = wanted.filter((c) => !have.has(c));
    if (missing.length > 0) {
      throw new CognigyResetError(
        'CR_ERR_STATE_CORRUPT',
        `${path} is damaged: its audit log table ${table} is ${have.size === 0 ? 'missing' : `missing column(s) ${missing.join(', ')}`}`,
      );
    }
  }
}

function privateCopy(path: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-read-'));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const target = join(dir, basename(path));
    copyFileSync(path, target);
    if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${target}-wal`);
    // The copy keeps the original's mode; SQLite must be able to recover or migrate it.
    chmodSync(target, 0o600);
    return { path: target, remove };
  } catch (cause) {
    remove();
    throw new CognigyResetError(
      'CR_ERR_STATE_OPEN',
      `cannot read ${path}: cannot make a private copy in ${tmpdir()} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause },
    );
  }
}

/**
 * An error met while reading the state file, as a coded error whose message says what is wrong with the
 * file, never SQLite's own text (which quotes SQL).
 */
export function asStateError(path: string, err: unknown): CognigyResetError {
  return (
    sqliteStateError(path, err) ??
    new CognigyResetError('CR_ERR_STATE_OPEN', `cannot read ${path}`, { cause: err })
  );
}

/** `err` as a coded state error when SQLite raised it; undefined otherwise. */
export function sqliteStateError(path: string, err: unknown): CognigyResetError | undefined {
  if (err instanceof CognigyResetError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    if (code === 'SQLITE_ERROR' || code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
      return new CognigyResetError('CR_ERR_STATE_CORRUPT', `${path} is damaged (${code})`, { cause: err });
    }
    return new CognigyResetError('CR_ERR_STATE_OPEN', `cannot read ${path} (${code})`, { cause: err });
  }
  return undefined;
}

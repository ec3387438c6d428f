/**
 * The ids a run has taken, in a private SQLite file in the temporary directory: exact, and flat in
 * memory for any number of ids (SQLite keeps a small page cache and spills the rest to the file). The
 * file is removed when the run ends; a killed run leaves it in the temporary directory (session ids only,
 * never a secret).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { SeenIds } from '../../reset/seen-ids.js';

export class SeenIdsFile implements SeenIds {
  readonly #db: Database.Database;
  readonly #dir: string;
  readonly #insert: Statement<[string, number], number>;
  readonly #get: Statement<[string], number>;

  constructor() {
    this.#dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-seen-'));
    const path = join(this.#dir, 'seen.sqlite');
    this.#db = new Database(path);
    const db = this.#db;
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -2048');
    db.exec('CREATE TABLE seen (id TEXT PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID');
    // RETURNING and pluck: a new id yields 1 and a repeat nothing, with no result object made per id.
    this.#insert = db
      .prepare<[string, number], number>(
        'INSERT INTO seen (id, idx) VALUES (?, ?) ON CONFLICT (id) DO NOTHING RETURNING 1',
      )
      .pluck();
    this.#get = db.prepare<[string], number>('SELECT idx FROM seen WHERE id = ?').pluck();
    // One transaction that is never committed: nothing is made durable, so an insert costs no sync.
    db.exec('BEGIN');
  }

  firstIndex(sessionId: string, index: number): number | undefined {
    if (this.#insert.get(sessionId, index) !== undefined) return undefined;
    return this.#get.get(sessionId);
  }

  close(): void {
    this.#db.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

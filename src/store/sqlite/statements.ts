/**
 * Statements prepared once per connection and kept: the store's SQL is a small set of fixed texts, and
 * preparing one costs more than running most of them (a status request runs several). Every statement
 * kept here runs to its end at once (`get`, `all`, `run`; none iterates), so one is never busy when it is
 * asked for again.
 */
import type { Database, Statement } from 'better-sqlite3';

/** Texts kept per connection; a text built with a varying part (a filter) cannot grow the map past this. */
const KEPT = 128;
const byConnection = new WeakMap<Database, Map<string, Statement>>();

export function prepared(db: Database, sql: string): Statement {
  let kept = byConnection.get(db);
  if (kept === undefined) {
    kept = new Map();
    byConnection.set(db, kept);
  }
  let statement = kept.get(sql);
  if (statement === undefined) {
    if (kept.size >= KEPT) kept.clear();
    statement = db.prepare(sql);
    kept.set(sql, statement);
  }
  return statement;
}

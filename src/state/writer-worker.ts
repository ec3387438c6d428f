/**
 * The writer thread: commits the state file's batches off the main thread, so a bulk run's resets are
 * not held up by SQLite. Each batch is one transaction; its id is posted back once it is durable.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { jobSessionWriter } from './batch-sql.js';

interface WriteMessage {
  id: number;
  kind: 'job-sessions';
  values: unknown[];
}

const { path } = workerData as { path: string };
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 10000');
const writers = { 'job-sessions': jobSessionWriter(db) };

parentPort!.on('message', (message: WriteMessage | { close: true }) => {
  if ('close' in message) {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    writers[message.kind](message.values);
    parentPort!.postMessage({ id: message.id, ok: true });
  } catch (err) {
    parentPort!.postMessage({ id: message.id, ok: false, message: (err as Error).message });
  }
});

/**
 * The writer thread: commits the state file's batches off the main thread, so a bulk run's resets are
 * not held up by SQLite or by hashing the audit chain. Each batch is one transaction; its id is posted
 * back once it is durable.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { type BatchMessage, batchWriter, probeWritable } from './batch-sql.js';

const { path } = workerData as { path: string };
const db = new Database(path);
let write: ReturnType<typeof batchWriter>;
try {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 10000');
  probeWritable(db);
  write = batchWriter(db);
  parentPort!.postMessage({ ready: true });
} catch (err) {
  // Told before the first send: the run stops with nothing reset.
  parentPort!.postMessage({ ready: false, message: (err as Error).message });
}

parentPort!.on('message', (message: { id: number; batch: BatchMessage } | { close: true }) => {
  if ('close' in message) {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    const deliveredError = write!(message.batch);
    parentPort!.postMessage({ id: message.id, ok: true, deliveredError });
  } catch (err) {
    parentPort!.postMessage({ id: message.id, ok: false, message: (err as Error).message });
  }
});

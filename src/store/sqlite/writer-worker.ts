/**
 * The writer thread: commits the state file's batches off the main thread, so a bulk run's resets are
 * not held up by SQLite or by hashing the audit chain. Each batch is one transaction; its id is posted
 * back once it is durable.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { WriterReply } from '../batching-writer.js';
import { type BatchMessage, batchWriter, notWritable, probeWritable } from './batch-sql.js';

const { path } = workerData as { path: string };
const reply = (message: WriterReply): void => parentPort!.postMessage(message);
const db = new Database(path);
let write: ReturnType<typeof batchWriter>;
try {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 10000');
  probeWritable(db);
  write = batchWriter(db);
  reply({ ready: true });
} catch (err) {
  // Told before the first send: the run stops with nothing reset.
  const coded = notWritable(path, err);
  reply({ ready: false, code: coded.code, message: coded.message });
}

parentPort!.on('message', (message: { id: number; batch: BatchMessage } | { close: true }) => {
  if ('close' in message) {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    const deliveredError = write!(message.batch);
    reply({ id: message.id, ok: true, deliveredError });
  } catch (err) {
    const text = `state file write failed: ${(err as Error).message}`;
    reply({ id: message.id, ok: false, code: 'CR_ERR_STATE_WRITE', message: text });
  }
});

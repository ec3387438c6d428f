/**
 * The PostgreSQL store's writer thread: commits batches on a connection of its own, off the main thread,
 * so a bulk run's resets are not held up by hashing the audit chain or encoding rows. Each batch is one
 * transaction; its id is posted back once it is durable.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Client } from 'pg';
import type { BatchMessage } from '../batch.js';
import type { WriterReply } from '../batching-writer.js';
import { pgStoreError } from './errors.js';
import { PgBatchCommitter } from './pg-batch.js';
import { clientConfig } from './url.js';

const { location, shown } = workerData as { location: string; shown: string };
const port = parentPort!;
const reply = (message: WriterReply): void => port.postMessage(message);
const client = new Client(clientConfig(location));
// A connection lost between batches fails the next one: its query rejects.
client.on('error', () => undefined);
const batches = new PgBatchCommitter(client);

const ready = (async () => {
  try {
    await client.connect();
    await batches.probe();
    reply({ ready: true });
    return true;
  } catch (err) {
    // Told before the first send: the run stops with nothing reset.
    const coded = pgStoreError(shown, 'preparing to write to', err, 'CR_ERR_STATE_OPEN');
    reply({ ready: false, code: coded.code, message: coded.message });
    return false;
  }
})();

/** Batches are committed one after the other, in the order they came. */
let chain: Promise<unknown> = ready;

async function commit(id: number, batch: BatchMessage): Promise<void> {
  if (!(await ready)) {
    reply({
      id,
      ok: false,
      code: 'CR_ERR_STATE_WRITE',
      message: `the PostgreSQL store ${shown} cannot be written`,
    });
    return;
  }
  try {
    await batches.commit(batch);
  } catch (err) {
    const coded = pgStoreError(shown, 'writing to', err, 'CR_ERR_STATE_WRITE');
    reply({ id, ok: false, code: coded.code, message: coded.message });
    return;
  }
  let deliveredError: string | undefined;
  try {
    await batches.remove(batch.delivered);
  } catch (err) {
    // The events stay in the outbox and go out again, where the tracker drops them by key.
    deliveredError = pgStoreError(shown, 'deleting delivered events from', err, 'CR_ERR_STATE_WRITE').message;
  }
  reply({ id, ok: true, deliveredError });
}

port.on('message', (message: { id: number; batch: BatchMessage } | { close: true }) => {
  if ('close' in message) {
    chain = chain.then(async () => {
      await client.end().catch(() => undefined);
      port.close();
    });
    return;
  }
  chain = chain.then(() => commit(message.id, message.batch));
});

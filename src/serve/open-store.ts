/**
 * The store the service and `keys` use (the CLI resolves where, `src/cli/store-flags.ts`). Jobs' ledgers
 * and audit records, and the API keys, live in it; the service keeps its jobs' outcome files and uploads
 * in a folder of its own.
 */
import { openStore, type Store } from '../store/index.js';

export function openServiceStore(location: string): Promise<Store> {
  return openStore(location);
}

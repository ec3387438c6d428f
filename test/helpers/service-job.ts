/** A service job's record as a store test writes it: nothing in its request or progress. */
import type { ServiceJobRecord } from '../../src/store/index.js';

export function serviceJobRecord(id: string, state: string, tenant = 't'): ServiceJobRecord {
  const now = new Date().toISOString();
  return {
    id,
    tenant,
    state,
    createdAt: now,
    updatedAt: now,
    request: {},
    progress: {},
    idempotency: null,
  };
}

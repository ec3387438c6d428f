/**
 * A service job as both backends keep it: one row, its request and progress as JSON text, and its
 * Idempotency-Key in three columns (all null without one).
 */
import type { ServiceJobRecord } from './port.js';

export interface ServiceJobRow {
  id: string;
  tenant: string;
  state: string;
  created_at: string;
  updated_at: string;
  request: string;
  progress: string;
  idempotency_key_id: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
}

export const serviceJobFromRow = (r: ServiceJobRow): ServiceJobRecord => ({
  id: r.id,
  tenant: r.tenant,
  state: r.state,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  request: JSON.parse(r.request) as Record<string, unknown>,
  progress: JSON.parse(r.progress) as Record<string, unknown>,
  idempotency:
    r.idempotency_key_id === null
      ? null
      : { keyId: r.idempotency_key_id, key: r.idempotency_key!, requestHash: r.request_hash! },
});

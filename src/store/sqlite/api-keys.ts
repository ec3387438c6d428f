/** The service's API keys in the state file (table `api_keys`), kept by their hash, never the key. */
import { prepared } from './statements.js';
import type { ApiKeyRecord } from '../port.js';
import { written } from './job-store.js';
import type { StateDb } from './state-file.js';

interface ApiKeyRow {
  id: string;
  hash: string;
  label: string;
  scopes: string;
  tenants: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

const fromKeyRow = (r: ApiKeyRow): ApiKeyRecord => ({
  id: r.id,
  hash: r.hash,
  label: r.label,
  scopes: JSON.parse(r.scopes) as string[],
  tenants: JSON.parse(r.tenants) as string[],
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
});

export function createApiKey(
  db: StateDb,
  key: Omit<ApiKeyRecord, 'createdAt' | 'revokedAt' | 'lastUsedAt'>,
): ApiKeyRecord {
  const createdAt = new Date().toISOString();
  written('the API key', () =>
    prepared(
      db,
      'INSERT INTO api_keys (id, hash, label, scopes, tenants, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(key.id, key.hash, key.label, JSON.stringify(key.scopes), JSON.stringify(key.tenants), createdAt),
  );
  return { ...key, createdAt, revokedAt: null, lastUsedAt: null };
}

export function findApiKey(db: StateDb, hash: string): ApiKeyRecord | undefined {
  const row = prepared(db, 'SELECT * FROM api_keys WHERE hash = ?').get(hash) as ApiKeyRow | undefined;
  return row === undefined ? undefined : fromKeyRow(row);
}

export function listApiKeys(db: StateDb): ApiKeyRecord[] {
  return (prepared(db, 'SELECT * FROM api_keys ORDER BY created_at, id').all() as ApiKeyRow[]).map(
    fromKeyRow,
  );
}

/** True when the key was revoked now; false when it was already, or does not exist. */
export function revokeApiKey(db: StateDb, id: string): boolean {
  const result = written('the API key', () =>
    prepared(db, 'UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(
      new Date().toISOString(),
      id,
    ),
  );
  return result.changes > 0;
}

export function markApiKeyUsed(db: StateDb, id: string, at: string): void {
  written('the API key', () =>
    prepared(
      db,
      'UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)',
    ).run(at, id, at),
  );
}

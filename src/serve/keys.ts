/**
 * API keys: random (256 bits), shown once, stored as their SHA-256 through the store port, looked up by
 * that hash and compared in constant time. A key has scopes and may be bound to tenants.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRecord, Store } from '../store/port.js';
import { refuse } from './problem.js';

export const SCOPES = ['jobs:read', 'jobs:write', 'audit:read'] as const;
export type Scope = (typeof SCOPES)[number];
const KEY_PREFIX = 'crk_';

/** Who made a request: the key's id, scopes and tenants (never the key). */
export interface Principal {
  keyId: string;
  scopes: readonly string[];
  /** Empty: every tenant. */
  tenants: readonly string[];
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function checkScopes(scopes: readonly string[]): void {
  if (scopes.length === 0) throw refuse('CR_ERR_OPT_MISSING', '--scope: give at least one scope', '--scope');
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope))
      throw refuse(
        'CR_ERR_OPT_INVALID',
        `--scope: ${JSON.stringify(scope)} is not a scope (${SCOPES.join(', ')})`,
        '--scope',
      );
  }
}

/** Creates a key; the record returned holds its hash, the key is returned once beside it. */
export async function createKey(
  store: Store,
  options: { scopes: string[]; tenants: string[]; label?: string | undefined },
): Promise<{ key: string; record: ApiKeyRecord }> {
  checkScopes(options.scopes);
  const id = `key_${randomBytes(8).toString('hex')}`;
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const record = await store.createApiKey({
    id,
    hash: hashKey(key),
    label: options.label ?? '',
    scopes: [...new Set(options.scopes)],
    tenants: [...new Set(options.tenants)],
  });
  return { key, record };
}

/** What `keys list` and `keys create` show of a key: everything but its hash. */
export function keyView(record: ApiKeyRecord): Record<string, unknown> {
  return {
    id: record.id,
    label: record.label,
    scopes: record.scopes,
    tenants: record.tenants,
    createdAt: record.createdAt,
    revokedAt: record.revokedAt,
    lastUsedAt: record.lastUsedAt,
  };
}

/** The principal of an `Authorization` header; 401 when there is no key, or it is unknown or revoked. */
export async function authenticate(store: Store, header: string | undefined): Promise<Principal> {
  const match = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
  if (match === null) throw refuse('CR_ERR_API_UNAUTHORIZED', 'this path needs Authorization: Bearer <key>');
  const hash = hashKey(match[1]!);
  const record = await store.findApiKey(hash);
  const same =
    record !== undefined && timingSafeEqual(Buffer.from(record.hash, 'hex'), Buffer.from(hash, 'hex'));
  if (!same || record.revokedAt !== null)
    throw refuse('CR_ERR_API_UNAUTHORIZED', 'the API key is unknown or revoked');
  return { keyId: record.id, scopes: record.scopes, tenants: record.tenants };
}

/** How often a key's use is written: `keys list` tells a key in use from a stale one to this much. */
const KEY_USE_EVERY_MS = 60_000;

/** Records each key's last use, at most once every `KEY_USE_EVERY_MS` per key; a failed write is logged. */
export class KeyUse {
  readonly #written = new Map<string, number>();

  constructor(
    readonly store: Store,
    readonly onError: (err: unknown) => void,
  ) {}

  seen(keyId: string): void {
    const now = Date.now();
    if (now - (this.#written.get(keyId) ?? -Infinity) < KEY_USE_EVERY_MS) return;
    this.#written.set(keyId, now);
    this.store.markApiKeyUsed(keyId, new Date(now).toISOString()).catch(this.onError);
  }
}

export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.includes(scope))
    throw refuse('CR_ERR_API_FORBIDDEN', `the API key lacks the scope ${scope}`);
}

export function requireTenant(principal: Principal, tenant: string): void {
  if (principal.tenants.length > 0 && !principal.tenants.includes(tenant))
    throw refuse('CR_ERR_API_FORBIDDEN', `the API key is not bound to tenant ${JSON.stringify(tenant)}`);
}

/**
 * A failure of the PostgreSQL store as a coded error. The message says what failed, on which store (its
 * redacted URL) and why in our own words, with the SQLSTATE or network code: never the driver's or the
 * server's text, which can quote SQL and the values it carried. The driver's error rides as `cause`.
 */
import { CognigyResetError } from '../../errors.js';

type StateCode = 'CR_ERR_STATE_OPEN' | 'CR_ERR_STATE_WRITE';

/** SQLSTATE classes and codes, in our words; `corrupt`: the store is not what this version made. */
const SQLSTATES: [RegExp, string, boolean?][] = [
  [/^08/, 'the connection failed'],
  [/^28/, 'the server refused the credentials'],
  [/^3D000$/, 'the database does not exist'],
  [/^3F000$/, 'the schema to create the store in does not exist'],
  [/^57P0[1-3]$/, 'the server is shutting down or starting up'],
  [/^53100$/, "the server's disk is full"],
  [/^53/, 'the server is out of resources'],
  [/^55P03$/, 'a lock was not granted in time (another process holds it)'],
  [/^57014$/, 'the statement was cancelled'],
  [/^25006$/, 'the connection is read-only'],
  [/^42501$/, 'permission denied'],
  [/^23505$/, 'a row with that key exists already'],
  [/^23/, 'a constraint refused the row'],
  [/^40/, 'a concurrent transaction conflicted'],
  [/^P0001$/, 'a trigger refused the write'],
  [/^42P0[17]$|^42703$/, 'its tables are not the ones this version of cognigy-reset made', true],
];

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
};

/** Why, in our words, and whether the store is damaged. */
function reasonOf(err: unknown): { text: string; corrupt: boolean } {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    const known = SQLSTATES.find(([pattern]) => pattern.test(code));
    return {
      text: `${known?.[1] ?? 'the server refused the statement'} (SQLSTATE ${code})`,
      corrupt: known?.[2] === true,
    };
  }
  if (code === 'ERR_INVALID_URL') return { text: 'the URL is not valid', corrupt: false };
  if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) {
    return { text: `${NETWORK[code] ?? 'a network error'} (${code})`, corrupt: false };
  }
  // The driver's own failures carry no code; a few are told apart by their fixed wording.
  const message = err instanceof Error ? err.message : '';
  if (/timeout/i.test(message)) return { text: 'connecting timed out', corrupt: false };
  if (/\bSSL\b/.test(message)) return { text: 'the SSL negotiation failed (sslmode)', corrupt: false };
  if (/terminated|closed|ended|not queryable|connection error/i.test(message))
    return { text: 'the connection was lost', corrupt: false };
  return { text: 'the driver failed', corrupt: false };
}

/**
 * `err` (from the driver, or ours, kept as it is) as a coded error: `doing` says what failed
 * ("connecting to", "writing to"); `code` is OPEN or WRITE; a store whose tables are not ours is CORRUPT.
 */
export function pgStoreError(shown: string, doing: string, err: unknown, code: StateCode): CognigyResetError {
  if (err instanceof CognigyResetError) return err;
  const reason = reasonOf(err);
  if (reason.corrupt) {
    return new CognigyResetError(
      'CR_ERR_STATE_CORRUPT',
      `the PostgreSQL store ${shown} is not usable: ${reason.text}`,
      { cause: err },
    );
  }
  return new CognigyResetError(code, `${doing} the PostgreSQL store ${shown} failed: ${reason.text}`, {
    cause: err,
  });
}

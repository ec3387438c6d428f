/** The engine's constraints on the runtime WebSocket protocol (the limits it enforces). The schemas read these. */
export const SUBPROTOCOL = 'cognigy-runtime-v1';
export const WS_PATH = '/ws/v1';
export const DEFAULT_WS_URL = 'wss://api.cognigy.com/ws/v1';
export const DEFAULT_ORIGIN = 'https://api.cognigy.com';

/** Largest frame, in bytes of UTF-8, in either direction. */
export const MAX_FRAME_BYTES = 64 * 1024;
export const SESSION_ID_MAX_LENGTH = 256;
export const MAX_DURATION_MIN_SEC = 60;
export const MAX_DURATION_MAX_SEC = 3600;
export const DEFAULT_MAX_DURATION_SEC = 900;
export const HANDSHAKE_TIMEOUT_MS = 10_000;
export const PING_INTERVAL_MS = 30_000;
export const DEAD_AFTER_MS = 60_000;

/** Scopes the engine checks: the handshake needs the first, a SEND the second. */
export const SCOPE_RUNTIME_EXECUTE = 'bot:runtime:execute';
export const SCOPE_SESSION_MANAGE = 'session:manage';

export const CLOSE_NORMAL = 1000;
export const CLOSE_DROPPED = 1006;
export const CLOSE_POLICY = 1008;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_ENGINE_ERROR = 1011;

/** Reset values of each state layer in a `stateClearMatrix`. */
export const STATE_RESET_VALUES = {
  flowState: 'RESET',
  dialogState: 'COLD',
  engineState: 'INITIALIZED',
} as const;

/**
 * Printable: no control, format, surrogate, private-use or unassigned characters and no line or
 * paragraph separators. Spaces are allowed; ids are opaque to us.
 */
export const SESSION_ID_PATTERN = '^[^\\p{C}\\p{Zl}\\p{Zp}]+$';
const sessionIdRegExp = new RegExp(SESSION_ID_PATTERN, 'u');

/** The same check the schema makes, for ids read from files before any directive exists. */
export function sessionIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'is empty';
  // UTF-16 length bounds the code-point count from above: count code points only when it might matter.
  if (id.length > SESSION_ID_MAX_LENGTH && [...id].length > SESSION_ID_MAX_LENGTH) {
    return `is longer than ${SESSION_ID_MAX_LENGTH} characters`;
  }
  if (!sessionIdRegExp.test(id)) return 'contains a character that is not printable';
  return undefined;
}

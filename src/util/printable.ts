/** Texts that end up on a terminal, in logs, audit records and messages: checked, or made safe to show. */

/**
 * Why `value` is not a short printable text (1 to `max` characters, no control characters), or undefined
 * when it is: such values are copied into audit records, logs and messages, where a newline could forge a
 * line.
 */
export function printableProblem(value: string, max: number): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (value.trim() === '' || [...value].length > max || /[\u0000-\u001f\u007f]/.test(value)) {
    const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    return `Expected a printable text of 1 to ${max} characters, got ${shown} (${[...value].length} characters).`;
  }
  return undefined;
}

/**
 * What a terminal may act on rather than show: C0 and C1 controls and DEL (ANSI escapes start with ESC or
 * the C1 CSI), format characters (bidi overrides can reorder what is shown), line and paragraph separators,
 * and lone surrogates.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** `\u001b` for ESC, and so on: the character shown as a JSON escape. */
function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * `text` made safe for a terminal: every character a terminal could act on is written as its `\uXXXX`
 * escape, so an engine's reason or an id from a file can neither colour, move nor forge a line.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** What JSON text leaves raw (it escapes C0 itself): DEL, C1, format characters, separators. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu;

/**
 * JSON text (one or more lines) made safe for a terminal: each character JSON leaves raw that a terminal
 * could act on is written as its `\uXXXX` escape. It parses back to the same value.
 */
export function safeJsonText(json: string): string {
  return json.replace(UNSAFE_IN_JSON, escapeChar);
}

/** `JSON.stringify(value)`, safe for a terminal (`safeJsonText`). */
export function safeJson(value: unknown): string {
  return safeJsonText(JSON.stringify(value));
}

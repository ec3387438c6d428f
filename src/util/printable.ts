/** The check for short texts that end up in audit records, logs and messages. */

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

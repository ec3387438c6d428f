/**
 * Option parsers for commander: each checks its value once, at the edge, and says which option, what was
 * expected and what came (`Expected --rate to be a number > 0, got "fast" (string)`).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { printableProblem } from '../util/printable.js';

function got(value: string): string {
  return `got ${JSON.stringify(value)}`;
}

/** Decimal notation only: `Number` would also read `0x3c`, `0b11` and spaces around a number. */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = DECIMAL.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}, ${got(value)}.`);
    }
    return n;
  };
}

export function numberIn(min: number, max: number, { exclusiveMin = false } = {}): (value: string) => number {
  return (value) => {
    const n = DECIMAL.test(value) ? Number(value) : NaN;
    if (!Number.isFinite(n) || n < min || n > max || (exclusiveMin && n === min)) {
      const lower = exclusiveMin ? `> ${min}` : `>= ${min}`;
      throw new InvalidArgumentError(`Expected a number ${lower} and <= ${max}, ${got(value)}.`);
    }
    return n;
  };
}

/** A short printable text, at most `max` characters (`printableProblem`). */
export function textUpTo(max: number): (value: string) => string {
  return (value) => {
    const problem = printableProblem(value, max);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    return value;
  };
}

/** Marks a parser whose option may be given more than once (`collect`). */
const REPEATABLE = Symbol('repeatable');

export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return Object.assign((value: string, previous: T[] | undefined) => [...(previous ?? []), parse(value)], {
    [REPEATABLE]: true,
  });
}

/**
 * Refuses an option that takes one value given twice (`--from-file a --from-file b` read only `b`), for
 * `command` and its subcommands; an option that collects its values may be repeated.
 */
export function onceEach(command: Command): void {
  for (const option of command.options) {
    const original = option.parseArg as ((value: string, previous: unknown) => unknown) | undefined;
    if (!(option.required || option.optional) || option.variadic) continue;
    if (original !== undefined && REPEATABLE in original) continue;
    let given = false;
    option.argParser((value: string, previous: unknown) => {
      if (given) throw new InvalidArgumentError('It was given twice: give it once.');
      given = true;
      return original === undefined ? value : original(value, previous);
    });
  }
  for (const sub of command.commands) onceEach(sub);
}

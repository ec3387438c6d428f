/**
 * Outputs never overwrite durable state: a file the CLI writes (`--metrics-file`) must not be the state
 * file, one of SQLite's companion files beside it (`-wal`, `-shm`, `-journal`), or a file the run reads,
 * under any spelling: relative or absolute, through `..`, a symlink (dangling ones too), or a hard link.
 */
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CognigyResetError } from '../errors.js';

/** SQLite's companion files of a database. */
const COMPANIONS = ['', '-wal', '-shm', '-journal'];
/** Symlinks followed at most (as the kernel's own limit). */
const MAX_LINKS = 40;

/** The path a file would be written at, with every symlink on the way resolved, existing or not. */
export function canonicalPath(path: string): string {
  let current = resolve(path);
  for (let hops = 0; hops < MAX_LINKS; hops++) {
    let dir: string;
    try {
      dir = realpathSync(dirname(current));
    } catch {
      return current; // the directory is missing: the write fails on its own
    }
    const full = join(dir, basename(current));
    const stat = lstatSync(full, { throwIfNoEntry: false });
    if (stat === undefined || !stat.isSymbolicLink()) return full;
    current = resolve(dir, readlinkSync(full));
  }
  return current;
}

/** Whether two paths name one file: the same canonical path, or, when both exist, the same inode. */
function sameFile(a: string, b: string): boolean {
  if (canonicalPath(a) === canonicalPath(b)) return true;
  const sa = statSync(a, { throwIfNoEntry: false });
  const sb = statSync(b, { throwIfNoEntry: false });
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}

export interface NamedPath {
  /** The option or variable that named it, for the message. */
  option: string;
  path: string;
}

/**
 * Refuses (CR_ERR_OPT_INVALID, exit 2, before anything is sent) an output that is the state file, one
 * of its companions, or a file the run reads. `statePath` is undefined when the store is no file here
 * (a PostgreSQL database).
 */
export function refuseOutputCollisions(
  outputs: readonly NamedPath[],
  statePath: string | undefined,
  inputs: readonly NamedPath[] = [],
): void {
  const guarded: NamedPath[] = [
    ...(statePath === undefined ? [] : COMPANIONS).map((suffix) => ({
      option: suffix === '' ? 'the state file' : `the state file's ${suffix} file`,
      path: `${statePath}${suffix}`,
    })),
    ...inputs,
  ];
  for (const output of outputs) {
    for (const kept of guarded) {
      if (!sameFile(output.path, kept.path)) continue;
      throw new CognigyResetError(
        'CR_ERR_OPT_INVALID',
        `${output.option} ${output.path} is ${kept.option} (${kept.path}): it would be overwritten; choose another path`,
        { field: output.option },
      );
    }
  }
}

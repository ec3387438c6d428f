/**
 * A process as another one can recognise it later: its host, its pid and, where /proc has it, its start
 * time (so a pid the kernel reused for another process is not taken for it).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcessIdentity {
  host: string;
  pid: number;
  /** Clock ticks after boot at which the process started (field 22 of /proc/PID/stat); null elsewhere. */
  start: string | null;
}

function startOf(pid: number): string | null | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    // No /proc at all (macOS): unknown. No such entry: no such process.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && procAvailable() ? undefined : null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

let proc: boolean | undefined;
function procAvailable(): boolean {
  if (proc === undefined) {
    try {
      readFileSync('/proc/self/stat');
      proc = true;
    } catch {
      proc = false;
    }
  }
  return proc;
}

export function thisProcess(): ProcessIdentity {
  return { host: hostname(), pid: process.pid, start: startOf(process.pid) ?? null };
}

/** Whether that process still runs: undefined when it ran on another host, which this one cannot tell. */
export function isRunning(p: ProcessIdentity): boolean | undefined {
  if (p.host !== hostname()) return undefined;
  if (procAvailable()) {
    const start = startOf(p.pid);
    if (start === undefined) return false;
    return p.start === null || start === p.start;
  }
  try {
    process.kill(p.pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, run by another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

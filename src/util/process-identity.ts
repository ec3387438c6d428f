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

/** The start time /proc gives `pid`, or null where it cannot be read (no /proc; hidden; gone). */
function startOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export function thisProcess(): ProcessIdentity {
  return { host: hostname(), pid: process.pid, start: startOf(process.pid) };
}

/** Whether that process still runs: undefined when it ran on another host, which this one cannot tell. */
export function isRunning(p: ProcessIdentity): boolean | undefined {
  if (p.host !== hostname()) return undefined;
  try {
    process.kill(p.pid, 0);
  } catch (err) {
    // EPERM: it exists, run by another user. ESRCH: no such process.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // The pid exists; it is the same process unless its start time says it was reused.
  const start = startOf(p.pid);
  return start === null || p.start === null || start === p.start;
}

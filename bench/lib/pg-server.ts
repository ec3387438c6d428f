/**
 * What a benchmark reads of the local PostgreSQL server: the CPU time of its processes (from /proc) and a
 * database's commits and row writes (`pg_stat_database`), to put a cost per reset on the server.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';

const CLOCK_TICKS = 100; // USER_HZ on Linux

/**
 * CPU time of the PostgreSQL server's processes so far, in µs (undefined without /proc): every live
 * process's own, and the postmaster's reaped children's (backends that ended).
 */
export function serverCpu(): number | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (comm !== 'postgres') continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]);
    // The postmaster (its parent is not postgres) holds the CPU of the backends it reaped.
    const parent = Number(f[1]);
    const parentComm = existsSync(`/proc/${parent}/stat`)
      ? readFileSync(`/proc/${parent}/stat`, 'utf8').split('(')[1]?.split(')')[0]
      : undefined;
    if (parentComm !== 'postgres') ticks += Number(f[13]) + Number(f[14]);
  }
  return (ticks * 1e6) / CLOCK_TICKS;
}

export interface DatabaseWrites {
  commits: number;
  /** Rows inserted, updated and deleted. */
  rows: number;
}

/** The database's commits and row writes so far (the statistics collector's, a little behind). */
export async function databaseWrites(admin: pg.Client, database: string): Promise<DatabaseWrites> {
  const { rows } = await admin.query<{ commits: string; rows: string }>(
    `SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS rows
       FROM pg_stat_database WHERE datname = $1`,
    [database],
  );
  return { commits: Number(rows[0]!.commits), rows: Number(rows[0]!.rows) };
}

/**
 * CPU time so far of each backend serving `database`, in µs by pid (empty without /proc): unlike
 * `serverCpu`, blind to other databases' load on a shared server, and to the server's own background
 * writers. A backend that ends between two readings takes its last figures with it. `except`: a
 * backend of the benchmark's own, left out. `except`: a
 * backend of the benchmark's own, left out.
 */
export async function backendCpu(
  admin: pg.Client,
  database: string,
  except = 0,
): Promise<Map<number, number>> {
  const cpu = new Map<number, number>();
  const { rows } = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> $2',
    [database, except],
  );
  for (const { pid } of rows) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      cpu.set(pid, ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS);
    } catch {
      // ended meanwhile, or no /proc
    }
  }
  return cpu;
}

/** The CPU the backends spent between two `backendCpu` readings, in µs (a new backend counts from 0). */
export function backendCpuSpent(before: Map<number, number>, after: Map<number, number>): number {
  let spent = 0;
  for (const [pid, us] of after) spent += us - (before.get(pid) ?? 0);
  return spent;
}

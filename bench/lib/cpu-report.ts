/**
 * Preloaded (`node --import`) into a CLI run by `bench/cpu-per-reset`: when the process exits, it writes
 * the process's CPU time — every thread's, user and system, in microseconds — to the file named by
 * `CR_BENCH_CPU_FILE`, and the main thread's alone where /proc has it (Linux; 10 ms ticks).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const file = process.env['CR_BENCH_CPU_FILE'];
const mainStat = `/proc/self/task/${process.pid}/stat`;
const clockTicks = 100; // USER_HZ on Linux

/** The main thread's CPU time in µs (user + system), or undefined without /proc. */
function mainThreadCpu(): number | undefined {
  if (!existsSync(mainStat)) return undefined;
  const fields = readFileSync(mainStat, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks;
}

if (isMainThread && file !== undefined) {
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    writeFileSync(file, JSON.stringify({ user, system, main: mainThreadCpu() ?? null }));
  });
}

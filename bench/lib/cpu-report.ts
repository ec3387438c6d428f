/**
 * Preloaded (`node --import`) into a CLI run by `bench/cpu-per-reset`: when the process exits, it writes
 * the process's CPU time — every thread's, user and system, in microseconds — to the file named by
 * `CR_BENCH_CPU_FILE`.
 */
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const file = process.env['CR_BENCH_CPU_FILE'];
if (isMainThread && file !== undefined) {
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    writeFileSync(file, JSON.stringify({ user, system }));
  });
}

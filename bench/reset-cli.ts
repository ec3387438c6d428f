/**
 * Bulk verified resets per second of `cognigy-reset reset` (a child process, with validation,
 * verification, the audit log and a job ledger all on) against the emulator (another process), compared in the
 * same run with (a) a serial client that does what the seed does and (b) the leanest pipelined client
 * (pre-built frames, no validation). Each round runs all three on fresh session ranges; medians and
 * ratios are printed.
 *
 *   npm run build && node dist/bench/reset-cli.js [--ids 30000] [--serial-ids 3000] [--runs 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
import { CLI as cli, cliRun } from './lib/cli-run.js';
import { leanRun } from './lib/lean-client.js';
import { serialRun } from './lib/serial-client.js';

const { values } = parseArgs({
  options: {
    ids: { type: 'string', default: '30000' },
    'serial-ids': { type: 'string', default: '3000' },
    runs: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '256' },
    connections: { type: 'string', default: '4' },
  },
});
const count = Number(values.ids);
const serialCount = Number(values['serial-ids']);
const runs = Number(values.runs);
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-bench-'));
const total = (runs + 1) * (2 * count + serialCount);
const emulator = await startChild(process.execPath, [cli, 'emulator', '--sessions', String(total)]);
const wsUrl = emulator.info['wsUrl']!;
let cursor = 0;
/** Validation, verification, the audit log (default on) and a job ledger: everything on. */
const cliArgs = (round: number): string[] => [
  '--job',
  `bench-${round}`,
  '--concurrency',
  values.concurrency,
  '--connections',
  values.connections,
];
const take = (n: number): string[] => Array.from({ length: n }, () => `session-${++cursor}`);

try {
  // Warm-up round (JIT in the emulator, page cache for the CLI).
  await leanRun({ wsUrl, ids: take(count) });
  await cliRun({ dir, name: 'warm', ids: take(Math.min(count, 5000)), wsUrl, args: cliArgs(-1) });
  const serialRates: number[] = [];
  const leanRates: number[] = [];
  const cliRates: number[] = [];
  const cliWall: number[] = [];
  for (let round = 0; round < runs; round++) {
    const s = await serialRun({ wsUrl, ids: take(serialCount) });
    if (s.verified !== serialCount) throw new Error(`serial verified ${s.verified}`);
    serialRates.push((s.verified / s.ms) * 1000);
    const l = await leanRun({ wsUrl, ids: take(count) });
    if (l.verified !== count) throw new Error(`lean verified ${l.verified}`);
    leanRates.push((l.verified / l.ms) * 1000);
    const c = await cliRun({ dir, name: `round-${round}`, ids: take(count), wsUrl, args: cliArgs(round) });
    if (c.verified !== count) throw new Error(`cli verified ${c.verified}`);
    cliRates.push(c.throughput);
    cliWall.push(c.wallPerSec);
  }
  const result = {
    bench: 'reset-cli',
    ids: count,
    runs,
    serialPerSec: Math.round(median(serialRates)),
    leanPerSec: Math.round(median(leanRates)),
    cliPerSec: Math.round(median(cliRates)),
    cliWallPerSec: Math.round(median(cliWall)),
    cliVsSerial: Number((median(cliRates) / median(serialRates)).toFixed(2)),
    cliVsLean: Number((median(cliRates) / median(leanRates)).toFixed(3)),
  };
  process.stdout.write(
    `verified resets/s, medians of ${runs}: cognigy-reset ${result.cliPerSec} (wall clock incl. start-up ${result.cliWallPerSec}); ` +
      `serial seed client ${result.serialPerSec}; lean pipelined client ${result.leanPerSec}\n` +
      `ratios: vs serial ${result.cliVsSerial}x (goal >= 3), vs lean ${result.cliVsLean} (goal >= 0.60)\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Bulk verified resets per second of `cognigy-reset reset` (a child process, with validation,
 * verification and the audit log on; once more with a job ledger too) against the emulator (another
 * process), compared in the same run with (a) a serial client that does what the seed does and (b) the
 * leanest pipelined client (pre-built frames, no validation). Each round runs every client on fresh
 * session ranges, one after the other; the ratios quoted are the medians of each round's own ratios (a
 * round's runs are seconds apart, so a drift in the machine's speed cancels out), beside the medians of
 * the rates. Each run resets 100,000 sessions (two to three seconds of bulk work): the CLI starts as a
 * fresh process every time, and in a run of a few tens of thousands, under a second, its warm-up (JIT)
 * would weigh more than the bulk rate the goal is about. `--ids 30000` shows that effect.
 *
 *   npm run build && node dist/bench/reset-cli.js [--ids 100000] [--serial-ids 3000] [--runs 3]
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
    ids: { type: 'string', default: '100000' },
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
const total = (runs + 1) * (3 * count + serialCount);
const emulator = await startChild(process.execPath, [cli, 'emulator', '--sessions', String(total)]);
const wsUrl = emulator.info['wsUrl']!;
let cursor = 0;
/** Validation, verification and the audit log are on by default; `job` adds a job ledger. */
const cliArgs = (job?: string): string[] => [
  ...(job === undefined ? [] : ['--job', job]),
  '--concurrency',
  values.concurrency,
  '--connections',
  values.connections,
];
const take = (n: number): string[] => Array.from({ length: n }, () => `session-${++cursor}`);

try {
  // Warm-up round (JIT in the emulator, page cache for the CLI).
  await leanRun({ wsUrl, ids: take(count) });
  await cliRun({ dir, name: 'warm', ids: take(Math.min(count, 5000)), wsUrl, args: cliArgs('warm') });
  const rates = { serial: [] as number[], lean: [] as number[], cli: [] as number[], cliJob: [] as number[] };
  const ratios = { serial: [] as number[], lean: [] as number[], leanJob: [] as number[] };
  const cliWall: number[] = [];
  const cli = async (name: string, job?: string): Promise<number> => {
    const c = await cliRun({ dir, name, ids: take(count), wsUrl, args: cliArgs(job) });
    if (c.verified !== count) throw new Error(`${name}: verified ${c.verified}`);
    if (job === undefined) cliWall.push(c.wallPerSec);
    return c.throughput;
  };
  for (let round = 0; round < runs; round++) {
    const s = await serialRun({ wsUrl, ids: take(serialCount) });
    if (s.verified !== serialCount) throw new Error(`serial verified ${s.verified}`);
    const l = await leanRun({ wsUrl, ids: take(count) });
    if (l.verified !== count) throw new Error(`lean verified ${l.verified}`);
    const serial = (s.verified / s.ms) * 1000;
    const lean = (l.verified / l.ms) * 1000;
    const plain = await cli(`round-${round}`);
    const withJob = await cli(`round-${round}-job`, `bench-${round}`);
    rates.serial.push(serial);
    rates.lean.push(lean);
    rates.cli.push(plain);
    rates.cliJob.push(withJob);
    ratios.serial.push(plain / serial);
    ratios.lean.push(plain / lean);
    ratios.leanJob.push(withJob / lean);
  }
  const round3 = (n: number): number => Number(n.toFixed(3));
  const result = {
    bench: 'reset-cli',
    ids: count,
    runs,
    serialPerSec: Math.round(median(rates.serial)),
    leanPerSec: Math.round(median(rates.lean)),
    cliPerSec: Math.round(median(rates.cli)),
    cliJobPerSec: Math.round(median(rates.cliJob)),
    cliWallPerSec: Math.round(median(cliWall)),
    cliVsSerial: Number(median(ratios.serial).toFixed(2)),
    cliVsLean: round3(median(ratios.lean)),
    cliVsLeanRange: [round3(Math.min(...ratios.lean)), round3(Math.max(...ratios.lean))],
    cliJobVsLean: round3(median(ratios.leanJob)),
    cliJobVsLeanRange: [round3(Math.min(...ratios.leanJob)), round3(Math.max(...ratios.leanJob))],
  };
  process.stdout.write(
    `verified resets/s, medians of ${runs} rounds: cognigy-reset ${result.cliPerSec} (wall clock incl. start-up ${result.cliWallPerSec}), ` +
      `with a job ledger too ${result.cliJobPerSec}; serial seed client ${result.serialPerSec}; lean pipelined client ${result.leanPerSec}\n` +
      `ratios, medians of the rounds' own: vs serial ${result.cliVsSerial}x (goal >= 3); ` +
      `vs lean ${result.cliVsLean} (rounds ${result.cliVsLeanRange.join('-')}; goal >= 0.60); ` +
      `with a job ledger too, vs lean ${result.cliJobVsLean} (rounds ${result.cliJobVsLeanRange.join('-')})\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

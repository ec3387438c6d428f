/**
 * What the audit log costs: bulk verified resets per second of `cognigy-reset reset` with the audit log
 * on (the default: hash-chained records committed before each outcome is reported) and with
 * `--no-audit`, alternating in the same run against one emulator. Goal: the audit log costs at most 15 %.
 *
 * Two pairs, because what `--no-audit` removes depends on the run:
 * - plain runs: without a job the audit log is the only reason for a state file, so "off" has no state
 *   file, no writer thread and nothing to wait for before reporting;
 * - job runs (`--job`): the job ledger keeps the state file and its writer thread on both sides, so the
 *   pair isolates the audit records themselves.
 *
 * Each run resets 100,000 sessions (about three seconds): a run of a few tens of thousands lasts under a
 * second, and a fresh process's warm-up (JIT, the writer thread starting) would weigh on it. The ratio
 * quoted is the median of each round's own on/off ratio, beside the medians of the rates.
 *
 *   npm run build && node dist/bench/audit-overhead.js [--ids 100000] [--runs 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
import { CLI, cliRun } from './lib/cli-run.js';

const { values } = parseArgs({
  options: { ids: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' } },
});
const count = Number(values.ids);
const runs = Number(values.runs);
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-audit-bench-'));
const emulator = await startChild(process.execPath, [
  CLI,
  'emulator',
  '--sessions',
  String((4 * runs + 2) * count),
]);
const wsUrl = emulator.info['wsUrl']!;
let cursor = 0;
const take = (): string[] => Array.from({ length: count }, () => `session-${++cursor}`);
const common = ['--concurrency', '256', '--connections', '4'];

interface Pair {
  on: number[];
  off: number[];
}

/** Each round's own on/off ratio: the two runs are seconds apart, so a drift in the machine cancels out. */
const pairRatios = (pair: Pair): number[] => pair.on.map((on, i) => on / pair.off[i]!);

async function side(name: string, args: string[]): Promise<number> {
  const result = await cliRun({ dir, name, ids: take(), wsUrl, args: [...common, ...args] });
  if (result.verified !== count) throw new Error(`${name}: verified ${result.verified}`);
  return result.throughput;
}

function report(label: string, pair: Pair): { on: number; off: number; ratio: number; ratioRange: number[] } {
  const on = median(pair.on);
  const off = median(pair.off);
  const ratios = pairRatios(pair);
  const ratio = median(ratios);
  const range = [Math.min(...ratios), Math.max(...ratios)].map((r) => Number(r.toFixed(3)));
  process.stdout.write(
    `${label}: verified resets/s, medians of ${runs}: audit on ${Math.round(on)}, audit off ${Math.round(off)}; ` +
      `ratio ${ratio.toFixed(3)}, median of the rounds' own (rounds ${range.join('-')}): ` +
      `the audit log costs ${((1 - ratio) * 100).toFixed(1)} %; goal <= 15 %\n`,
  );
  return { on: Math.round(on), off: Math.round(off), ratio: Number(ratio.toFixed(3)), ratioRange: range };
}

try {
  await side('warm', []);
  await side('warm-job', ['--job', 'warm-job']);
  const plain: Pair = { on: [], off: [] };
  const job: Pair = { on: [], off: [] };
  for (let round = 0; round < runs; round++) {
    // Alternate which goes first, so drift in the machine does not favour one side.
    const order = round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const which of order) {
      const audit = which === 'on' ? [] : ['--no-audit'];
      plain[which].push(await side(`plain-${which}-${round}`, audit));
      job[which].push(await side(`job-${which}-${round}`, [...audit, '--job', `job-${which}-${round}`]));
    }
  }
  const plainResult = report('plain runs (off: no state file at all)', plain);
  const jobResult = report('job runs (a job ledger on both sides)', job);
  process.stdout.write(
    `${JSON.stringify({ bench: 'audit-overhead', ids: count, runs, plain: plainResult, job: jobResult })}\n`,
  );
} finally {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

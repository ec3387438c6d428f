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
import { cliRun } from './lib/cli-run.js';
import { pairedRatio, roundOrder, startPairedBench } from './lib/paired-bench.js';

const bench = await startPairedBench('audit', (runs) => 4 * runs + 2);
const { count, runs, dir, wsUrl, take, common } = bench;

interface Pair {
  on: number[];
  off: number[];
}

async function side(name: string, args: string[]): Promise<number> {
  const result = await cliRun({ dir, name, ids: take(), wsUrl, args: [...common, ...args] });
  if (result.verified !== count) throw new Error(`${name}: verified ${result.verified}`);
  return result.throughput;
}

function report(label: string, pair: Pair): ReturnType<typeof pairedRatio> {
  const result = pairedRatio(pair.on, pair.off);
  process.stdout.write(
    `${label}: verified resets/s, medians of ${runs}: audit on ${result.on}, audit off ${result.off}; ` +
      `ratio ${result.ratio.toFixed(3)}, median of the rounds' own (rounds ${result.ratioRange.join('-')}): ` +
      `the audit log costs ${((1 - result.ratio) * 100).toFixed(1)} %; goal <= 15 %\n`,
  );
  return result;
}

try {
  await side('warm', []);
  await side('warm-job', ['--job', 'warm-job']);
  const plain: Pair = { on: [], off: [] };
  const job: Pair = { on: [], off: [] };
  for (let round = 0; round < runs; round++) {
    for (const which of roundOrder(round)) {
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
  await bench.stop();
}

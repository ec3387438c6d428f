/**
 * What the audit log costs: bulk verified resets per second of `cognigy-reset reset` with the audit log
 * on (the default: hash-chained records committed before each outcome is reported) and with
 * `--no-audit`, alternating in the same run against one emulator. Goal: the audit log costs at most 15 %.
 *
 *   npm run build && node dist/bench/audit-overhead.js [--ids 30000] [--runs 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
import { CLI, cliRun } from './lib/cli-run.js';

const { values } = parseArgs({
  options: { ids: { type: 'string', default: '30000' }, runs: { type: 'string', default: '5' } },
});
const count = Number(values.ids);
const runs = Number(values.runs);
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-audit-bench-'));
const emulator = await startChild(process.execPath, [
  CLI,
  'emulator',
  '--sessions',
  String((2 * runs + 1) * count),
]);
const wsUrl = emulator.info['wsUrl']!;
let cursor = 0;
const take = (): string[] => Array.from({ length: count }, () => `session-${++cursor}`);
const common = ['--concurrency', '256', '--connections', '4'];

try {
  await cliRun({ dir, name: 'warm', ids: take(), wsUrl, args: common });
  const on: number[] = [];
  const off: number[] = [];
  for (let round = 0; round < runs; round++) {
    // Alternate which goes first, so drift in the machine does not favour one side.
    const order = round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    for (const side of order) {
      const result = await cliRun({
        dir,
        name: `${side}-${round}`,
        ids: take(),
        wsUrl,
        args: side === 'on' ? common : [...common, '--no-audit'],
      });
      if (result.verified !== count) throw new Error(`${side}: verified ${result.verified}`);
      (side === 'on' ? on : off).push(result.throughput);
    }
  }
  const ratio = median(on) / median(off);
  process.stdout.write(
    `verified resets/s, medians of ${runs}: audit on ${Math.round(median(on))}, audit off ${Math.round(median(off))}; ` +
      `ratio ${ratio.toFixed(3)} (the audit log costs ${((1 - ratio) * 100).toFixed(1)} %; goal <= 15 %)\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'audit-overhead', ids: count, runs, auditOn: Math.round(median(on)), auditOff: Math.round(median(off)), ratio: Number(ratio.toFixed(3)) })}\n`,
  );
} finally {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

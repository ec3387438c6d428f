/**
 * Bulk verified resets per second of `cognigy-reset reset` (a child process, with validation,
 * verification and the SQLite job ledger on) against the emulator (another process), compared in the
 * same run with (a) a serial client that does what the seed does and (b) the leanest pipelined client
 * (pre-built frames, no validation). Each round runs all three on fresh session ranges; medians and
 * ratios are printed.
 *
 *   npm run build && node dist/bench/reset-cli.js [--ids 30000] [--serial-ids 3000] [--runs 3]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
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
const cli = fileURLToPath(new URL('../../bin/cognigy-reset', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-bench-'));
const total = (runs + 1) * (2 * count + serialCount);
const emulator = await startChild(process.execPath, [cli, 'emulator', '--sessions', String(total)]);
const wsUrl = emulator.info['wsUrl']!;
let cursor = 0;
const take = (n: number): string[] => Array.from({ length: n }, () => `session-${++cursor}`);

async function cliRun(
  ids: string[],
  round: number,
): Promise<{ inRun: number; wall: number; verified: number }> {
  const file = join(dir, `ids-${round}.txt`);
  writeFileSync(file, `${ids.join('\n')}\n`);
  const args = [
    cli,
    'reset',
    '--from-file',
    file,
    '--json',
    '--no-progress',
    '--job',
    `bench-${round}`,
    '--state',
    join(dir, 'state.sqlite'),
    '--concurrency',
    values.concurrency,
    '--connections',
    values.connections,
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      COGNIGY_WS_URL: wsUrl,
      COGNIGY_TENANT_ID: 'bench',
      COGNIGY_BOT_ID: 'bench',
      COGNIGY_API_TOKEN: 'dev-token',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let tail = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (tail = (tail + chunk).slice(-4096)));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const wall = performance.now() - started;
  const summary = JSON.parse(tail.trim().split('\n').at(-1)!).summary as {
    verified: number;
    throughput: number;
  };
  if (code !== 0) throw new Error(`cognigy-reset exited ${code}`);
  return { inRun: summary.throughput, wall: (ids.length / wall) * 1000, verified: summary.verified };
}

try {
  // Warm-up round (JIT in the emulator, page cache for the CLI).
  await leanRun({ wsUrl, ids: take(count) });
  await cliRun(take(Math.min(count, 5000)), -1);
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
    const c = await cliRun(take(count), round);
    if (c.verified !== count) throw new Error(`cli verified ${c.verified}`);
    cliRates.push(c.inRun);
    cliWall.push(c.wall);
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

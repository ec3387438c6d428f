/**
 * Is the emulator fast enough to be the engine in every benchmark? Verified resets per second served to
 * the lean pipelined client by the emulator, against the same client on a bare ws echo server, in the
 * same run, each server in its own process. Prints medians and the ratio.
 *
 *   npm run build && node dist/bench/emulator.js [--ids 20000] [--runs 5]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
import { leanRun } from './lib/lean-client.js';

const { values } = parseArgs({
  options: { ids: { type: 'string', default: '20000' }, runs: { type: 'string', default: '5' } },
});
const count = Number(values.ids);
const runs = Number(values.runs);
const cli = fileURLToPath(new URL('../../bin/cognigy-reset', import.meta.url));
const echoScript = fileURLToPath(new URL('./lib/echo-server.js', import.meta.url));

const ids = Array.from({ length: count }, (_, i) => `session-${i + 1}`);
const emulator = await startChild(process.execPath, [cli, 'emulator', '--sessions', String(count)]);
const echo = await startChild(process.execPath, [echoScript]);
try {
  // Warm both up (JIT, and the emulator materialises its seeded sessions).
  await leanRun({ wsUrl: emulator.info['wsUrl']!, ids });
  await leanRun({ wsUrl: echo.info['wsUrl']!, ids });
  const emuRates: number[] = [];
  const echoRates: number[] = [];
  for (let run = 0; run < runs; run++) {
    const e = await leanRun({ wsUrl: emulator.info['wsUrl']!, ids });
    if (e.verified !== count) throw new Error(`emulator verified ${e.verified} of ${count} resets`);
    emuRates.push((e.resets / e.ms) * 1000);
    const b = await leanRun({ wsUrl: echo.info['wsUrl']!, ids });
    echoRates.push((b.resets / b.ms) * 1000);
  }
  const emu = median(emuRates);
  const base = median(echoRates);
  const result = {
    bench: 'emulator',
    ids: count,
    runs,
    emulatorResetsPerSec: Math.round(emu),
    echoResetsPerSec: Math.round(base),
    ratio: Number((emu / base).toFixed(3)),
  };
  process.stdout.write(
    `emulator: ${result.emulatorResetsPerSec} verified resets/s (median of ${runs}); bare ws echo: ${result.echoResetsPerSec}/s; ratio ${result.ratio}\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await emulator.stop();
  await echo.stop();
}

/**
 * What the webhook sink costs a bulk run: verified resets per second of `cognigy-reset reset` with
 * `--analytics-url` (each outcome an outbox event, POSTed in batches while the run lasts) against the same
 * run without it, alternating in one run against one emulator. Both sides keep the audit log on, so the
 * pair isolates the sink. The tracker is a bare HTTP server in this process that counts what it accepts:
 * each webhook run must deliver every event by the time it exits.
 *
 *   npm run build && node dist/bench/webhook-overhead.js [--ids 100000] [--runs 5]
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
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
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-webhook-bench-'));
const emulator = await startChild(process.execPath, [
  CLI,
  'emulator',
  '--sessions',
  String((2 * runs + 1) * count),
]);
const wsUrl = emulator.info['wsUrl']!;

let received = 0;
const tracker = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    // Counted, not parsed: the tracker shares the cores with the run it serves.
    received += Buffer.concat(chunks).toString().split('"idempotencyKey"').length - 1;
    res.writeHead(200).end('{}');
  });
});
tracker.listen(0, '127.0.0.1');
await once(tracker, 'listening');
const trackerUrl = `http://127.0.0.1:${(tracker.address() as { port: number }).port}/events`;

let cursor = 0;
const take = (): string[] => Array.from({ length: count }, () => `session-${++cursor}`);
const common = ['--concurrency', '256', '--connections', '4'];

async function side(name: string, args: string[]): Promise<number> {
  const before = received;
  const result = await cliRun({
    dir,
    name,
    ids: take(),
    wsUrl,
    args: [...common, ...args],
    state: join(dir, `${name}.sqlite`),
  });
  if (result.verified !== count) throw new Error(`${name}: verified ${result.verified}`);
  if (args.length > 0 && received - before < count) {
    throw new Error(`${name}: the tracker received ${received - before} of ${count} events`);
  }
  return result.throughput;
}

try {
  await side('warm', ['--analytics-url', trackerUrl]);
  const on: number[] = [];
  const off: number[] = [];
  for (let round = 0; round < runs; round++) {
    // Alternate which goes first, so drift in the machine does not favour one side.
    const order = round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const which of order) {
      if (which === 'on') on.push(await side(`on-${round}`, ['--analytics-url', trackerUrl]));
      else off.push(await side(`off-${round}`, []));
    }
  }
  const ratios = on.map((rate, i) => rate / off[i]!);
  const ratio = median(ratios);
  const range = [Math.min(...ratios), Math.max(...ratios)].map((r) => Number(r.toFixed(3)));
  process.stdout.write(
    `verified resets/s, medians of ${runs}, audit log on both sides: with --analytics-url ${Math.round(median(on))}, ` +
      `without ${Math.round(median(off))}; ratio ${ratio.toFixed(3)}, median of the rounds' own (rounds ${range.join('-')}): ` +
      `the webhook sink costs ${((1 - ratio) * 100).toFixed(1)} %\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'webhook-overhead', ids: count, runs, on: Math.round(median(on)), off: Math.round(median(off)), ratio: Number(ratio.toFixed(3)), ratioRange: range })}\n`,
  );
} finally {
  tracker.close();
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

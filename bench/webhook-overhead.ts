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
import { createServer } from 'node:http';
import { join } from 'node:path';
import { cliRun } from './lib/cli-run.js';
import { pairedRatio, roundOrder, startPairedBench } from './lib/paired-bench.js';

const bench = await startPairedBench('webhook', (runs) => 2 * runs + 1);
const { count, runs, dir, wsUrl, take, common } = bench;

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
    for (const which of roundOrder(round)) {
      if (which === 'on') on.push(await side(`on-${round}`, ['--analytics-url', trackerUrl]));
      else off.push(await side(`off-${round}`, []));
    }
  }
  const result = pairedRatio(on, off);
  process.stdout.write(
    `verified resets/s, medians of ${runs}, audit log on both sides: with --analytics-url ${result.on}, ` +
      `without ${result.off}; ratio ${result.ratio.toFixed(3)}, median of the rounds' own (rounds ${result.ratioRange.join('-')}): ` +
      `the webhook sink costs ${((1 - result.ratio) * 100).toFixed(1)} %\n`,
  );
  process.stdout.write(`${JSON.stringify({ bench: 'webhook-overhead', ids: count, runs, ...result })}\n`);
} finally {
  tracker.close();
  await bench.stop();
}

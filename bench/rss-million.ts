/**
 * Peak RSS of `cognigy-reset reset --from-file` for 1,000,000 ids (job ledger on), against the same
 * command for 10,000 ids in the same run: flat memory means the two peaks are close. The CLI reports its
 * own peak (`maxRssMb`, from getrusage) in its JSON summary.
 *
 *   npm run build && node dist/bench/rss-million.js [--ids 1000000] [--runs 3]
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
import { RESET_CLI } from './lib/cli-run.js';

const { values } = parseArgs({
  options: { ids: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '3' } },
});
const count = Number(values.ids);
const runs = Number(values.runs);
const small = 10_000;
const cli = fileURLToPath(new URL('../../bin/cognigy-reset', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-rss-'));

async function idsFile(name: string, from: number, n: number): Promise<string> {
  const path = join(dir, name);
  const out = createWriteStream(path);
  for (let i = from; i < from + n; i++) {
    if (!out.write(`session-${i}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return path;
}

async function run(
  file: string,
  job: string,
  wsUrl: string,
): Promise<{ maxRssMb: number; verified: number; seconds: number }> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      RESET_CLI,
      'reset',
      '--from-file',
      file,
      '--json',
      '--no-progress',
      '--job',
      job,
      '--state',
      join(dir, 'state.sqlite'),
      '--concurrency',
      '256',
    ],
    {
      env: {
        ...process.env,
        COGNIGY_WS_URL: wsUrl,
        COGNIGY_TENANT_ID: 'bench',
        COGNIGY_BOT_ID: 'bench',
        COGNIGY_API_TOKEN: 'dev-token',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let tail = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (tail = (tail + chunk).slice(-4096)));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`cognigy-reset exited ${code}`);
  const summary = JSON.parse(tail.trim().split('\n').at(-1)!).summary as {
    maxRssMb: number;
    verified: number;
  };
  return { ...summary, seconds: (performance.now() - started) / 1000 };
}

// Peak RSS depends on when V8 collects its old generation, which varies from run to run: the million is
// run several times (fresh sessions, a fresh job each time) and the median and the worst are reported.
const emulator = await startChild(process.execPath, [
  cli,
  'emulator',
  '--sessions',
  String(runs * count + small),
]);
try {
  const smallFile = await idsFile('small.txt', runs * count + 1, small);
  const baseline = await run(smallFile, 'small', emulator.info['wsUrl']!);
  const bigs: { maxRssMb: number; verified: number; seconds: number }[] = [];
  for (let round = 0; round < runs; round++) {
    const bigFile = await idsFile(`big-${round}.txt`, round * count + 1, count);
    const big = await run(bigFile, `big-${round}`, emulator.info['wsUrl']!);
    if (big.verified !== count) throw new Error(`verified ${big.verified} of ${count}`);
    bigs.push(big);
  }
  const peaks = bigs.map((b) => b.maxRssMb);
  const mid = median(peaks);
  const worst = Math.max(...peaks);
  process.stdout.write(
    `peak RSS for ${count} ids, ${runs} runs: median ${mid} MB, worst ${worst} MB (${peaks.join(', ')}; each ~${median(bigs.map((b) => b.seconds)).toFixed(0)} s, all verified) ` +
      `vs ${baseline.maxRssMb} MB for ${small} ids (goal: under 200 MB)\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'rss-million', ids: count, runs, maxRssMb: peaks, medianMb: mid, worstMb: worst, baselineMaxRssMb: baseline.maxRssMb })}\n`,
  );
} finally {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * `cognigy-reset sessions list --flow` over the emulator's OData door: time and peak RSS of the CLI for
 * 100,000 sessions (1000 records a page), against 10,000 in the same run (flat memory means the two peaks
 * are close). The emulator runs in its own process, seeded with enough sessions that the Flow matches
 * more than asked; `--limit` takes exactly that many. The CLI's peak RSS comes from getrusage in the
 * child, reported by a preloaded exit hook.
 *
 *   npm run build && node dist/bench/selectors.js [--rows 100000] [--page-size 1000]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startChild } from './lib/child.js';
import { SEED_FLOWS } from '../src/emulator/steps.js';

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '100000' }, 'page-size': { type: 'string', default: '1000' } },
});
const rows = Number(values.rows);
const pageSize = values['page-size'];
const cli = fileURLToPath(new URL('../../bin/cognigy-reset', import.meta.url));
const RSS_HOOK =
  "data:text/javascript,process.on('exit',()=>process.stderr.write('maxRssMb='+Math.round(process.resourceUsage().maxRSS/1024)+'\\n'))";

async function list(
  httpUrl: string,
  limit: number,
): Promise<{ rows: number; seconds: number; maxRssMb: number }> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--import',
      RSS_HOOK,
      cli,
      'sessions',
      'list',
      '--flow',
      SEED_FLOWS[0]!.referenceId,
      '--limit',
      String(limit),
      '--page-size',
      pageSize,
    ],
    {
      env: { ...process.env, COGNIGY_ODATA_URL: httpUrl, COGNIGY_ODATA_KEY: 'dev-token' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let lines = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    for (const byte of chunk) if (byte === 10) lines++;
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`sessions list exited ${code}: ${stderr}`);
  const rss = /maxRssMb=(\d+)/.exec(stderr);
  return { rows: lines, seconds: (performance.now() - started) / 1000, maxRssMb: Number(rss?.[1] ?? NaN) };
}

// About 80 % of seeded sessions run the first Flow: seed a margin more than asked.
const seeded = Math.ceil(rows * 1.4);
const emulator = await startChild(process.execPath, [cli, 'emulator', '--sessions', String(seeded)]);
try {
  const httpUrl = emulator.info['httpUrl']!;
  // The first listing also makes the emulator build its analytics index: warm it up first.
  await list(httpUrl, 10);
  const smallRun = await list(httpUrl, rows / 10);
  const bigRun = await list(httpUrl, rows);
  if (bigRun.rows !== rows) throw new Error(`listed ${bigRun.rows} rows, expected ${rows}`);
  process.stdout.write(
    `sessions list --flow, ${pageSize} records a page, emulator seeded with ${seeded} sessions:\n` +
      `  ${bigRun.rows} rows: ${bigRun.seconds.toFixed(2)} s (${Math.round(bigRun.rows / bigRun.seconds)} rows/s), peak RSS ${bigRun.maxRssMb} MB\n` +
      `  ${smallRun.rows} rows: ${smallRun.seconds.toFixed(2)} s, peak RSS ${smallRun.maxRssMb} MB\n`,
  );
} finally {
  await emulator.stop();
}

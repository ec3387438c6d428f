/**
 * Two versions of the CLI side by side in one run: each benchmark named runs once with this checkout's
 * CLI and once with another build's (`--baseline`, the path of its `bin/cognigy-reset`), alternating for
 * `--rounds` rounds, so that a drift in the machine's speed falls on both. Each figure is the median of
 * the rounds; the ratio is after / before.
 *
 *   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
 *   npm run build && node dist/bench/before-after.js --baseline /tmp/before/bin/cognigy-reset \
 *     [--rounds 3] [--benches reset-cli,rss-million,cpu-per-reset] [--scale 1]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './lib/child.js';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    benches: { type: 'string', default: 'reset-cli,rss-million,cpu-per-reset' },
    /** Each benchmark's id count, times this (its defaults: 100,000; 1,000,000; 100,000). */
    scale: { type: 'string', default: '1' },
  },
});
if (values.baseline === undefined) throw new Error('--baseline PATH/bin/cognigy-reset is required');
const rounds = Number(values.rounds);
const scale = Number(values.scale);
const DEFAULT_IDS: Record<string, number> = {
  'reset-cli': 100_000,
  'rss-million': 1_000_000,
  'cpu-per-reset': 100_000,
};

type Result = Record<string, unknown>;
const top =
  (key: string) =>
  (r: Result): number =>
    Number(r[key]);
const cpuRow =
  (config: string, key: string) =>
  (r: Result): number =>
    Number((r['rows'] as Result[]).find((row) => row['client'] === `cognigy-reset (${config})`)?.[key]);

/** The figures of each benchmark's JSON line that this comparison reads. */
const FIGURES: Record<string, { args: string[]; figures: Record<string, (r: Result) => number> }> = {
  'reset-cli': {
    args: ['--runs', '1'],
    figures: { cliPerSec: top('cliPerSec'), cliJobPerSec: top('cliJobPerSec'), cliVsLean: top('cliVsLean') },
  },
  'rss-million': {
    args: ['--runs', '1'],
    figures: { millionMb: top('medianMb'), tenThousandMb: top('baselineMaxRssMb') },
  },
  'cpu-per-reset': {
    args: ['--runs', '1'],
    figures: {
      auditClientUs: cpuRow('audit', 'clientUs'),
      auditJobClientUs: cpuRow('audit+job', 'clientUs'),
      auditMainThreadUs: cpuRow('audit', 'mainThreadUs'),
    },
  },
};

async function once1(bench: string, cli: string | undefined): Promise<Result> {
  const script = fileURLToPath(new URL(`./${bench}.js`, import.meta.url));
  const ids = String(Math.round(DEFAULT_IDS[bench]! * scale));
  const child = spawn(process.execPath, [script, ...FIGURES[bench]!.args, '--ids', ids], {
    env: { ...process.env, ...(cli === undefined ? {} : { CR_BENCH_CLI: cli }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${bench} exited ${code}`);
  const last = out.trimEnd().split('\n').at(-1)!;
  return JSON.parse(last) as Result;
}

const report: Record<string, unknown> = {};
for (const bench of values.benches.split(',')) {
  const spec = FIGURES[bench];
  if (spec === undefined) throw new Error(`unknown bench ${bench}`);
  const before: Record<string, number[]> = {};
  const after: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so that neither always runs on a warmer machine.
    const order = round % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const which of order) {
      const result = await once1(bench, which === 'before' ? values.baseline : undefined);
      const into = which === 'before' ? before : after;
      for (const [key, read] of Object.entries(spec.figures)) {
        const value = read(result);
        if (Number.isFinite(value)) (into[key] ??= []).push(value);
      }
    }
  }
  const rows: Record<string, unknown> = {};
  for (const key of Object.keys(spec.figures)) {
    const b = median(before[key] ?? []);
    const a = median(after[key] ?? []);
    rows[key] = { before: round3(b), after: round3(a), ratio: round3(a / b) };
    process.stdout.write(
      `${bench} ${key}: before ${round3(b)}  after ${round3(a)}  after/before ${round3(a / b)}\n`,
    );
  }
  report[bench] = rows;
}
process.stdout.write(`${JSON.stringify({ bench: 'before-after', rounds, ...report })}\n`);

function round3(n: number): number {
  return Number(n.toFixed(3));
}

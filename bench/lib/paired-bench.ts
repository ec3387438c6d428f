/**
 * What the paired CLI benchmarks share (`audit-overhead`, `webhook-overhead`): their options, an emulator
 * with enough fresh sessions for every run, and the paired ratio of two sides measured in alternating
 * rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startChild } from './child.js';
import { CLI } from './cli-run.js';

export interface PairedBench {
  /** Session ids a run (`--ids`, default 100,000) and rounds (`--runs`, default 5). */
  count: number;
  runs: number;
  dir: string;
  wsUrl: string;
  /** The next `count` fresh session ids. */
  take: () => string[];
  /** The CLI options every run gets: the lean client's window. */
  common: string[];
  stop: () => Promise<void>;
}

/** Parses `--ids`/`--runs` and starts an emulator seeded with `runsOfIds(runs)` × `count` sessions. */
export async function startPairedBench(
  name: string,
  runsOfIds: (runs: number) => number,
): Promise<PairedBench> {
  const { values } = parseArgs({
    options: { ids: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' } },
  });
  const count = Number(values.ids);
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), `cognigy-reset-${name}-bench-`));
  const emulator = await startChild(process.execPath, [
    CLI,
    'emulator',
    '--sessions',
    String(runsOfIds(runs) * count),
  ]);
  let cursor = 0;
  return {
    count,
    runs,
    dir,
    wsUrl: emulator.info['wsUrl']!,
    take: () => Array.from({ length: count }, () => `session-${++cursor}`),
    common: ['--concurrency', '256', '--connections', '4'],
    stop: async () => {
      await emulator.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Which side a round runs first: alternating, so a drift in the machine favours neither. */
export const roundOrder = (round: number): readonly ('on' | 'off')[] =>
  round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];

/**
 * The median of each round's own on/off ratio (a round's runs are seconds apart, so a drift in the
 * machine cancels out), its range, and the medians of each side.
 */
export function pairedRatio(
  on: number[],
  off: number[],
): { on: number; off: number; ratio: number; ratioRange: number[] } {
  const ratios = on.map((rate, i) => rate / off[i]!);
  return {
    on: Math.round(median(on)),
    off: Math.round(median(off)),
    ratio: Number(median(ratios).toFixed(3)),
    ratioRange: [Math.min(...ratios), Math.max(...ratios)].map((r) => Number(r.toFixed(3))),
  };
}

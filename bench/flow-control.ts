/**
 * Flow control with default flags: the CLI against the emulator capped at 50, 300 and 3,000 SEND frames a
 * second (a cap it is not told), a cap halved mid-run, two processes sharing one cap, an engine that
 * answers after 50 ms, and uncapped engines. Prints, per case, throughput ÷ cap, the share of SEND frames
 * refused, and the time to converge; for the slow engine, the in-flight limit and p99 latency ÷ the
 * engine's 50 ms; for the uncapped engines, the CLI's rate ÷ the lean pipelined client's rate, measured in
 * the same run.
 *
 *   node dist/bench/flow-control.js [--cases capped,halved,shared,slow,uncapped] [--uncapped-ids 200000]
 *     [--rounds 1] [--cli-args="--rate 1000000 --fixed-rate"]
 *
 * `--cli-args` adds flags to every CLI run (to measure what the defaults cost); `CR_BENCH_CLI` names
 * another build's `bin/cognigy-reset` to measure instead of this checkout's (the engines stay this one's).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { startChild } from './lib/child.js';
import { CLI, RESET_CLI } from './lib/cli-run.js';
import { leanRun } from './lib/lean-client.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: 'capped,halved,shared,slow,uncapped' },
    'uncapped-ids': { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '1' },
    'cli-args': { type: 'string', default: '' },
  },
});
const CASES = new Set(values.cases.split(','));
const UNCAPPED_IDS = Number(values['uncapped-ids']);
const CLI_ARGS = values['cli-args'].split(' ').filter((a) => a !== '');
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-flow-bench-'));
const ids = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `session-${i + from}`);

interface Run {
  summary: Record<string, unknown> & { throughput: number; verified: number };
  /** [seconds since start, resets finished in that interval per second] from the progress lines. */
  intervals: [number, number][];
}

/** One `reset` child with default flags; progress every 0.5 s read from stderr. */
function reset(emu: Pick<Emulator, 'wsUrl'>, name: string, list: string[]): Promise<Run> {
  const file = join(dir, `${name}.txt`);
  writeFileSync(file, `${list.join('\n')}\n`);
  const child = spawn(
    process.execPath,
    [
      RESET_CLI,
      'reset',
      '--from-file',
      file,
      '--json',
      '--no-audit',
      '--progress-interval',
      '0.5',
      ...CLI_ARGS,
    ],
    {
      env: {
        ...process.env,
        COGNIGY_WS_URL: emu.wsUrl,
        COGNIGY_TENANT_ID: 'bench',
        COGNIGY_BOT_ID: 'bench',
        COGNIGY_API_TOKEN: 'dev-token',
        COGNIGY_RESET_STATE: join(dir, `${name}.sqlite`),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((resolve, reject) =>
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${name}: exit ${code}\n${err.slice(-2000)}`));
      const summary = JSON.parse(out.trimEnd().split('\n').at(-1)!).summary as Run['summary'];
      const done = [...err.matchAll(/progress: (\d+)\//g)].map((m) => Number(m[1]));
      const intervals = done.map((d, i): [number, number] => [(i + 1) * 0.5, (d - (done[i - 1] ?? 0)) * 2]);
      resolve({ summary, intervals });
    }),
  );
}

/**
 * Seconds from `after` until the achieved rate, averaged over 2 s, first comes within ±10 % of `target`
 * (progress every 0.5 s; the last interval, the drain, is left out).
 */
function convergedAt(intervals: [number, number][], target: number, after = 0): number | null {
  const tail = intervals.filter(([t]) => t > after).slice(0, -1);
  for (let i = 0; i + 4 <= tail.length; i++) {
    const mean = tail.slice(i, i + 4).reduce((sum, [, r]) => sum + r, 0) / 4;
    if (Math.abs(mean - target) <= 0.1 * target) return tail[i]![0] - 0.5 - after;
  }
  return null;
}

const refusedOf = (emu: Emulator): number => emu.stats().answers['RATE_LIMITED'] ?? 0;
const pct = (n: number): string => `${(n * 100).toFixed(2)} %`;
/** Where the in-flight limit ended, and how often it was cut. */
function depthOf(run: Run): string {
  const flow = run.summary['flowControl'] as { depth?: { limit: number; cuts: number; floorMs: number } };
  const d = flow.depth;
  return d === undefined ? '' : `  in-flight limit ${d.limit} (${d.cuts} cuts, floor ${d.floorMs} ms)`;
}

async function capped(cap: number, seconds: number): Promise<void> {
  const emu = await startEmulator({ sessions: cap * seconds, faults: { messageRate: cap } });
  try {
    const run = await reset(emu, `cap-${cap}`, ids(cap * seconds));
    const refused = refusedOf(emu);
    const conv = convergedAt(run.intervals, cap);
    process.stdout.write(
      `cap ${cap}/s, ${cap * seconds} sessions: throughput / cap ${(run.summary.throughput / cap).toFixed(3)}` +
        `  refused ${pct(refused / (cap * seconds + refused))}` +
        `  converged after ${conv === null ? 'never' : `${conv.toFixed(1)} s`}${depthOf(run)}\n`,
    );
  } finally {
    await emu.close();
  }
}

async function halved(): Promise<void> {
  const cap = 300;
  const n = 6000;
  const emu = await startEmulator({ sessions: n, faults: { messageRate: cap } });
  try {
    const running = reset(emu, 'halved', ids(n));
    const at = 10;
    const timer = setTimeout(() => emu.setFaults({ messageRate: cap / 2 }), at * 1000);
    const run = await running;
    clearTimeout(timer);
    const refused = refusedOf(emu);
    const conv = convergedAt(run.intervals, cap / 2, at);
    process.stdout.write(
      `cap ${cap}/s halved after ${at} s, ${n} sessions: refused ${pct(refused / (n + refused))}` +
        `  converged ${conv === null ? 'never' : `${conv.toFixed(1)} s`} after the change\n`,
    );
  } finally {
    await emu.close();
  }
}

async function shared(): Promise<void> {
  const cap = 300;
  const each = 3000;
  const emu = await startEmulator({ sessions: 2 * each, faults: { messageRate: cap } });
  try {
    const [a, b] = await Promise.all([
      reset(emu, 'shared-a', ids(each)),
      reset(emu, 'shared-b', ids(each, each + 1)),
    ]);
    const refused = refusedOf(emu);
    process.stdout.write(
      `two processes sharing a cap of ${cap}/s: each ${(a.summary.throughput / cap).toFixed(3)} and ` +
        `${(b.summary.throughput / cap).toFixed(3)} of the cap  refused ${pct(refused / (2 * each + refused))}\n`,
    );
  } finally {
    await emu.close();
  }
}

/** An engine that answers after 50 ms: the limit must stay bounded, and p99 latency within 3× 50 ms. */
async function slow(): Promise<void> {
  const n = 20_000;
  const latencyMs = 50;
  const emu = await startEmulator({ sessions: n, faults: { latencyMs } });
  try {
    const run = await reset(emu, 'slow', ids(n));
    const latency = run.summary['latencyMs'] as { p50: number; p99: number };
    process.stdout.write(
      `engine answering after ${latencyMs} ms, ${n} sessions: ${Math.round(run.summary.throughput)}/s` +
        `  p50 ${latency.p50} ms, p99 ${latency.p99} ms = ${(latency.p99 / latencyMs).toFixed(2)}× the engine's ${latencyMs} ms` +
        `${depthOf(run)}\n`,
    );
  } finally {
    await emu.close();
  }
}

/** Uncapped: the defaults against the lean pipelined client, on the emulator and on a lean engine. */
async function uncapped(engineName: string, args: string[]): Promise<void> {
  const n = UNCAPPED_IDS;
  // The engine in a process of its own: the lean client and the CLI each get the other core.
  const engine = await startChild(process.execPath, args);
  try {
    const wsUrl = engine.info['wsUrl']!;
    const lean = await leanRun({ wsUrl, ids: ids(n), connections: 2, window: 256 });
    const leanRate = (lean.resets / lean.ms) * 1000;
    const run = await reset({ wsUrl }, `uncapped-${engineName}`, ids(n));
    process.stdout.write(
      `uncapped ${engineName}, ${n} sessions: ${CLI_ARGS.length === 0 ? 'defaults' : CLI_ARGS.join(' ')} ` +
        `${Math.round(run.summary.throughput)}/s, lean client ` +
        `${Math.round(leanRate)}/s: ratio ${(run.summary.throughput / leanRate).toFixed(3)}${depthOf(run)}\n`,
    );
  } finally {
    await engine.stop();
  }
}

try {
  for (let round = 0; round < Number(values.rounds); round++) {
    if (CASES.has('capped')) {
      await capped(50, 30);
      await capped(300, 20);
      await capped(3000, 20);
    }
    if (CASES.has('halved')) await halved();
    if (CASES.has('shared')) await shared();
    if (CASES.has('slow')) await slow();
    if (CASES.has('uncapped')) {
      await uncapped('emulator', [CLI, 'emulator', '--sessions', String(UNCAPPED_IDS)]);
      await uncapped('lean engine', [fileURLToPath(new URL('./lib/lean-engine.js', import.meta.url))]);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

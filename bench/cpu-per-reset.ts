/**
 * Where the time goes: CPU per verified reset (user + system, every thread) of `cognigy-reset reset` in
 * four configurations — nothing durable (`--no-audit`), the audit log (the default), a job ledger alone,
 * and both — of the lean pipelined client, and of the emulator serving each. On two cores shared by the
 * client and the emulator, throughput follows the sum of the two, so this is what the throughput
 * benchmarks' ratios come from.
 *
 * A CLI run's figure is net of start-up: the same configuration's CPU time for a one-id run (median of
 * three) is taken off before dividing by the ids. Every run gets a fresh state file. The emulator's CPU,
 * and the CLI's main thread's alone (the thread every reset waits on; the rest is the writer thread and
 * V8's helpers), are read from /proc (Linux only; left out elsewhere).
 *
 *   npm run build && node dist/bench/cpu-per-reset.js [--ids 100000] [--runs 3]
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
import { CLI, cliRun } from './lib/cli-run.js';
import { leanRun } from './lib/lean-client.js';

const { values } = parseArgs({
  options: { ids: { type: 'string', default: '100000' }, runs: { type: 'string', default: '3' } },
});
const count = Number(values.ids);
const runs = Number(values.runs);

const CONFIGS = [
  { name: 'no-audit', args: ['--no-audit'] },
  { name: 'audit', args: [] },
  { name: 'job', args: ['--no-audit', '--job'] },
  { name: 'audit+job', args: ['--job'] },
] as const;

const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-cpu-bench-'));
const emulator = await startChild(process.execPath, [
  CLI,
  'emulator',
  '--sessions',
  String((CONFIGS.length + 1) * (runs + 1) * count + 100),
]);
const wsUrl = emulator.info['wsUrl']!;
const statFile = `/proc/${emulator.child.pid}/stat`;
const clockTicks = 100; // USER_HZ on Linux
/** The emulator's CPU time so far in µs, or undefined without /proc. */
const emulatorCpu = (): number | undefined => {
  if (!existsSync(statFile)) return undefined;
  const fields = readFileSync(statFile, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks;
};
let cursor = 0;
let stateFiles = 0;
const take = (n: number): string[] => Array.from({ length: n }, () => `session-${++cursor}`);
const argsOf = (config: (typeof CONFIGS)[number], job: string): string[] =>
  config.args.flatMap((a) => (a === '--job' ? ['--job', job] : [a]));

interface Sample {
  cliUs?: number;
  mainUs?: number;
  emulatorUs?: number;
  perSec: number;
}

interface CliCpu {
  cpuMs: number;
  mainCpuMs: number | undefined;
  sample: Sample;
}

async function cli(config: (typeof CONFIGS)[number], n: number): Promise<CliCpu> {
  const name = `${config.name.replace('+', '-')}-${stateFiles}`;
  const before = emulatorCpu();
  const result = await cliRun({
    dir,
    name,
    ids: take(n),
    wsUrl,
    args: [...argsOf(config, name), '--concurrency', '256', '--connections', '4'],
    state: join(dir, `state-${stateFiles++}.sqlite`),
    cpu: true,
  });
  if (result.verified !== n) throw new Error(`${name}: verified ${result.verified} of ${n}`);
  const after = emulatorCpu();
  const sample: Sample = { perSec: result.throughput };
  if (before !== undefined && after !== undefined) sample.emulatorUs = (after - before) / n;
  return { cpuMs: result.cpuMs!, mainCpuMs: result.mainCpuMs, sample };
}

try {
  await leanRun({ wsUrl, ids: take(count) });
  await cli(CONFIGS[0], Math.min(count, 5000));
  const startup = new Map<string, number>();
  const mainStartup = new Map<string, number>();
  for (const config of CONFIGS) {
    const ones: CliCpu[] = [];
    for (let i = 0; i < 3; i++) ones.push(await cli(config, 1));
    startup.set(config.name, median(ones.map((o) => o.cpuMs)));
    if (ones.every((o) => o.mainCpuMs !== undefined))
      mainStartup.set(config.name, median(ones.map((o) => o.mainCpuMs!)));
  }
  const samples = new Map<string, Sample[]>([
    ...CONFIGS.map((c) => [c.name, []] as [string, Sample[]]),
    ['lean', []],
  ]);
  for (let round = 0; round < runs; round++) {
    const before = emulatorCpu();
    const cpu = process.cpuUsage();
    const lean = await leanRun({ wsUrl, ids: take(count) });
    const used = process.cpuUsage(cpu);
    const after = emulatorCpu();
    if (lean.verified !== count) throw new Error(`lean verified ${lean.verified}`);
    samples.get('lean')!.push({
      cliUs: (used.user + used.system) / count,
      perSec: (lean.verified / lean.ms) * 1000,
      ...(before !== undefined && after !== undefined ? { emulatorUs: (after - before) / count } : {}),
    });
    for (const config of CONFIGS) {
      const { cpuMs, mainCpuMs, sample } = await cli(config, count);
      sample.cliUs = ((cpuMs - startup.get(config.name)!) * 1000) / count;
      const mainBase = mainStartup.get(config.name);
      if (mainCpuMs !== undefined && mainBase !== undefined)
        sample.mainUs = ((mainCpuMs - mainBase) * 1000) / count;
      samples.get(config.name)!.push(sample);
    }
  }
  const rows = [...samples].map(([name, list]) => {
    const of = (key: keyof Sample): number | undefined =>
      list.every((s) => s[key] !== undefined) ? median(list.map((s) => s[key]!)) : undefined;
    const client = of('cliUs')!;
    const main = name === 'lean' ? undefined : of('mainUs');
    const engine = of('emulatorUs');
    return {
      client: name === 'lean' ? 'lean client' : `cognigy-reset (${name})`,
      clientUs: Number(client.toFixed(1)),
      mainThreadUs: main === undefined ? null : Number(main.toFixed(1)),
      emulatorUs: engine === undefined ? null : Number(engine.toFixed(1)),
      totalUs: engine === undefined ? null : Number((client + engine).toFixed(1)),
      perSec: Math.round(of('perSec')!),
      startupMs: name === 'lean' ? null : Math.round(startup.get(name)!),
    };
  });
  process.stdout.write(
    `CPU per verified reset, medians of ${runs} runs of ${count} ids (client net of start-up):\n`,
  );
  for (const row of rows) {
    process.stdout.write(
      `  ${row.client.padEnd(28)} client ${String(row.clientUs).padStart(5)} µs` +
        (row.mainThreadUs === null ? '' : ` (main thread ${row.mainThreadUs} µs)`) +
        (row.emulatorUs === null
          ? ''
          : `, emulator ${String(row.emulatorUs).padStart(5)} µs, sum ${row.totalUs} µs`) +
        `; ${row.perSec}/s${row.startupMs === null ? '' : `; start-up ${row.startupMs} ms`}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify({ bench: 'cpu-per-reset', ids: count, runs, rows })}\n`);
} finally {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

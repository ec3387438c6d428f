/**
 * Runs `cognigy-reset reset --from-file` as a child process and returns its JSON summary. The JSON lines
 * go to a file, as `cognigy-reset reset --json > outcomes.jsonl` would keep them: a pipe would put a
 * reader (this process) on the same two cores as the run it measures.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../../bin/cognigy-reset', import.meta.url));
/**
 * The CLI whose `reset` runs are measured: this checkout's, or another build's named by `CR_BENCH_CLI`
 * (`bench/before-after.ts` sets it to compare two versions in one run). The emulator stays this one.
 */
export const RESET_CLI = process.env['CR_BENCH_CLI'] ?? CLI;

export interface CliSummary {
  verified: number;
  throughput: number;
  maxRssMb: number;
  wallPerSec: number;
  /** The process's CPU time in ms, every thread, user and system (only with `cpu: true`). */
  cpuMs?: number;
  /** The main thread's alone, in ms (with `cpu: true`, where /proc has it). */
  mainCpuMs?: number;
}

const CPU_REPORT = fileURLToPath(new URL('./cpu-report.js', import.meta.url));

export async function cliRun(opts: {
  dir: string;
  name: string;
  ids: string[];
  wsUrl: string;
  args: string[];
  /** The state file; `state.sqlite` in `dir` by default. */
  state?: string;
  /** Report the run's CPU time (`cpuMs`). */
  cpu?: boolean;
}): Promise<CliSummary> {
  const file = join(opts.dir, `${opts.name}.txt`);
  const outFile = join(opts.dir, `${opts.name}.jsonl`);
  writeFileSync(file, `${opts.ids.join('\n')}\n`);
  const cpuFile = join(opts.dir, `${opts.name}.cpu.json`);
  const out = openSync(outFile, 'w');
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...(opts.cpu === true ? ['--import', CPU_REPORT] : []),
      RESET_CLI,
      'reset',
      '--from-file',
      file,
      '--json',
      '--no-progress',
      ...opts.args,
    ],
    {
      env: {
        ...process.env,
        ...(opts.cpu === true ? { CR_BENCH_CPU_FILE: cpuFile } : {}),
        COGNIGY_WS_URL: opts.wsUrl,
        COGNIGY_TENANT_ID: 'bench',
        COGNIGY_BOT_ID: 'bench',
        COGNIGY_API_TOKEN: 'dev-token',
        COGNIGY_RESET_STATE: opts.state ?? join(opts.dir, 'state.sqlite'),
      },
      stdio: ['ignore', out, 'inherit'],
    },
  );
  closeSync(out);
  const [code] = (await once(child, 'close')) as [number | null];
  const wall = performance.now() - started;
  if (code !== 0) throw new Error(`cognigy-reset exited ${code}`);
  const text = readFileSync(outFile, 'utf8');
  rmSync(outFile, { force: true });
  const lines = text.trimEnd().split('\n');
  if (lines.length !== opts.ids.length + 1) {
    throw new Error(`cognigy-reset printed ${lines.length - 1} outcome lines for ${opts.ids.length} ids`);
  }
  const summary = JSON.parse(lines.at(-1)!).summary as Omit<CliSummary, 'wallPerSec' | 'cpuMs'>;
  const result: CliSummary = { ...summary, wallPerSec: (opts.ids.length / wall) * 1000 };
  if (opts.cpu === true) {
    const cpu = JSON.parse(readFileSync(cpuFile, 'utf8')) as {
      user: number;
      system: number;
      main: number | null;
    };
    result.cpuMs = (cpu.user + cpu.system) / 1000;
    if (cpu.main !== null) result.mainCpuMs = cpu.main / 1000;
    rmSync(cpuFile, { force: true });
  }
  return result;
}

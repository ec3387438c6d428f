/** Runs `cognigy-reset reset --from-file` as a child process and returns its JSON summary. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../../bin/cognigy-reset', import.meta.url));

export interface CliSummary {
  verified: number;
  throughput: number;
  maxRssMb: number;
  wallPerSec: number;
}

export async function cliRun(opts: {
  dir: string;
  name: string;
  ids: string[];
  wsUrl: string;
  args: string[];
}): Promise<CliSummary> {
  const file = join(opts.dir, `${opts.name}.txt`);
  writeFileSync(file, `${opts.ids.join('\n')}\n`);
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [CLI, 'reset', '--from-file', file, '--json', '--no-progress', ...opts.args],
    {
      env: {
        ...process.env,
        COGNIGY_WS_URL: opts.wsUrl,
        COGNIGY_TENANT_ID: 'bench',
        COGNIGY_BOT_ID: 'bench',
        COGNIGY_API_TOKEN: 'dev-token',
        COGNIGY_RESET_STATE: join(opts.dir, 'state.sqlite'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let tail = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (tail = (tail + chunk).slice(-4096)));
  const [code] = (await once(child, 'close')) as [number | null];
  const wall = performance.now() - started;
  if (code !== 0) throw new Error(`cognigy-reset exited ${code}`);
  const summary = JSON.parse(tail.trim().split('\n').at(-1)!).summary as Omit<CliSummary, 'wallPerSec'>;
  return { ...summary, wallPerSec: (opts.ids.length / wall) * 1000 };
}

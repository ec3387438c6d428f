/**
 * The resume loop (issue 14 §2): a job over 400 sessions, 5 % of them caught in a blocking webhook
 * call, is SIGKILLed at random moments five times and resumed each time, then run to its end; in a loop.
 * It counts double resets (a session the engine reset more than once) and unrecorded resets (a session
 * the engine reset that the audit log does not hold). Both must be zero.
 *
 *   npm run build && node dist/bench/resume-loop.js [--loops 20] [--sessions 400] [--kills 5]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEmulator } from '../src/emulator/index.js';

const { values } = parseArgs({
  options: {
    loops: { type: 'string', default: '20' },
    sessions: { type: 'string', default: '400' },
    kills: { type: 'string', default: '5' },
  },
});
const loops = Number(values.loops);
const total = Number(values.sessions);
const kills = Number(values.kills);
const cli = fileURLToPath(new URL('../../bin/cognigy-reset', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-resume-loop-'));

/** Runs a child to its end without blocking this process (the emulator answers from here). */
async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout };
}

let doubles = 0;
let unrecorded = 0;
let killed = 0;
let failedRuns = 0;
try {
  for (let loop = 0; loop < loops; loop++) {
    const emu = await startEmulator({
      sessions: total,
      faults: { blockingShare: 0.05, blockingMs: 1500, latencyMs: 2, seed: loop + 1 },
    });
    const state = join(dir, `state-${loop}.sqlite`);
    const ids = Array.from({ length: total }, (_, i) => `session-${i + 1}`);
    const args = [cli, 'reset', ...ids, '--json', '--no-progress', '--job', `loop-${loop}`, '--state', state];
    const env = {
      ...process.env,
      COGNIGY_WS_URL: emu.wsUrl,
      COGNIGY_TENANT_ID: 'tenant-1',
      COGNIGY_BOT_ID: 'bot-1',
      COGNIGY_API_TOKEN: 'dev-token',
    };
    try {
      for (let k = 0; k < kills; k++) {
        const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        // A random moment: after 0–600 ms, or when the run ends by itself.
        const delay = Math.random() * 600;
        const timer = setTimeout(() => {
          if (child.exitCode === null) {
            child.kill('SIGKILL');
            killed++;
          }
        }, delay);
        await exited;
        clearTimeout(timer);
      }
      const last = await run(args, env);
      if (last.code !== 0) failedRuns++;
      const exported = await run([cli, 'audit', 'export', '--state', state], env);
      const audited = new Set(
        exported.stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => (JSON.parse(l) as { sessionId: string }).sessionId),
      );
      for (const id of ids) {
        const resets = emu.store.get(id)?.resets ?? 0;
        if (resets > 1) doubles++;
        if (resets > 0 && !audited.has(id)) unrecorded++;
      }
    } finally {
      await emu.close();
    }
    process.stdout.write(
      `loop ${loop + 1}/${loops}: double resets so far ${doubles}, unrecorded ${unrecorded}, kills ${killed}\n`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(
  `resume loop: ${loops} loops × ${total} sessions, ${killed} SIGKILLs: double resets ${doubles}, unrecorded resets ${unrecorded}, final runs not exiting 0: ${failedRuns}\n`,
);
process.exitCode = doubles === 0 && unrecorded === 0 && failedRuns === 0 ? 0 : 1;

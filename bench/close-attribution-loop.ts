/**
 * The close-attribution loop (issue 14 §2): against an engine that answers with the seed's bare shapes
 * and closes the connection (1008 or 1009) because of one session of 20, pipelined on one connection,
 * only that session may fail with the close's code; every other one is retried and reset, once. In a
 * loop, with the guilty session and the code drawn at random.
 *
 *   npm run build && node dist/bench/close-attribution-loop.js [--loops 20]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startHostileEngine, hostileEnv } from '../test/helpers/hostile-engine.js';

const { values } = parseArgs({ options: { loops: { type: 'string', default: '20' } } });
const loops = Number(values.loops);
const cli = fileURLToPath(new URL('../../bin/cognigy-reset', import.meta.url));
const ids = Array.from({ length: 20 }, (_, i) => `s-${i + 1}`);

// Audited runs, as a user's are by default (the audit log is on).
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-close-loop-'));
let misattributed = 0;
let doubles = 0;
let retried = 0;
for (let loop = 0; loop < loops; loop++) {
  const guilty = ids[Math.floor(Math.random() * ids.length)]!;
  const [what, code] =
    Math.random() < 0.5
      ? (['close-1008', 'CR_ERR_TRANSPORT_POLICY'] as const)
      : (['close-1009', 'CR_ERR_TRANSPORT_TOO_BIG'] as const);
  const engine = await startHostileEngine({ [guilty]: what });
  try {
    // Asynchronously: the engine answers from this very process.
    const child = spawn(
      process.execPath,
      [
        cli,
        'reset',
        ...ids,
        '--json',
        '--no-progress',
        '--concurrency',
        '20',
        '--connections',
        '1',
        // All at once on one connection: a fixed rate, not the adaptive rate's gentle start.
        '--rate',
        '100000',
        '--fixed-rate',
        '--state',
        join(dir, `state-${loop}.sqlite`),
      ],
      { env: { ...process.env, ...hostileEnv(engine) }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    await new Promise((resolve) => child.once('close', resolve));
    const result = { stdout };
    const lines = result.stdout
      .split('\n')
      .filter((l) => l.startsWith('{"sessionId"'))
      .map(
        (l) =>
          JSON.parse(l) as {
            sessionId: string;
            outcome: string;
            attempts: number;
            error: { code: string } | null;
          },
      );
    for (const id of ids) {
      const line = lines.find((l) => l.sessionId === id);
      const wrong =
        line === undefined ||
        (id === guilty ? line.outcome !== 'failed' || line.error?.code !== code : line.outcome !== 'reset');
      if (wrong) misattributed++;
      if ((engine.applied.get(id) ?? 0) > 1) doubles++;
      if (line !== undefined && line.attempts > 1) retried++;
    }
  } finally {
    await engine.close();
  }
  process.stdout.write(
    `loop ${loop + 1}/${loops}: ${what} on ${guilty}; misattributions so far ${misattributed}\n`,
  );
}
rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  `close attribution: ${loops} loops × ${ids.length} sessions: misattributions ${misattributed}, double resets ${doubles}, sessions retried after a close ${retried}\n`,
);
process.exitCode = misattributed === 0 && doubles === 0 ? 0 : 1;

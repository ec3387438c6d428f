/**
 * `npm start`: the main job, end to end, against a local engine. An emulator starts in-process with
 * 2,000 seeded sessions (2 % caught in a blocking webhook call, 2 ms answer latency, a dropped
 * connection every 400 frames) plus three ids that do not exist. The pipeline resets them all as a
 * named, audited bulk job in a temporary SQLite state file: validate, send, acknowledge, verify (polling the
 * blocking ones), retry what the drops cut off. Exits 0 when all 2,000 were verified and the three
 * ghosts came back SESSION_NOT_FOUND.
 */
import { subscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { humanSummary } from '../reset/summary.js';
import { startEmulator } from '../emulator/index.js';
import { CHANNELS } from '../reset/events.js';
import type { BulkTarget } from '../reset/bulk.js';
import { resolveActor } from '../audit/record.js';
import { openStore } from '../store/index.js';
import { jobSpec } from '../runner/spec.js';
import { startJob } from '../runner/start-job.js';
import { StaticTokenProvider } from '../transports/auth/token-provider.js';

const SESSIONS = 2000;
const GHOSTS = ['ghost-1', 'ghost-2', 'ghost-3'];

const emulator = await startEmulator({
  sessions: SESSIONS,
  faults: { blockingShare: 0.02, blockingMs: 400, latencyMs: 2, dropEveryFrames: 400 },
});
const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-demo-'));
const statePath = join(dir, 'state.sqlite');

process.stdout.write(
  `engine emulator at ${emulator.wsUrl}: ${SESSIONS} sessions mid-flow (2 % in a blocking webhook call), ` +
    `3 ids that do not exist, a dropped connection every 400 frames\n` +
    `the same run from the shell: cognigy-reset reset --from-file ids.txt --job demo --state state.sqlite\n\n`,
);

// The job the CLI would run for that command: a named, audited job in a state file.
const spec = jobSpec({
  transport: 'runtime-ws',
  url: emulator.wsUrl,
  tenant: 'demo-tenant',
  botId: 'demo-bot',
  pipeline: { concurrency: 32, connections: 4, verifyTimeoutSec: 30 },
  jobId: 'demo',
  reason: 'npm start: the demo',
  actor: resolveActor(process.env),
});

function* batches(): Generator<BulkTarget[]> {
  const ids = [...Array.from({ length: SESSIONS }, (_, i) => `session-${i + 1}`), ...GHOSTS];
  yield ids.map((sessionId, index) => ({ sessionId, index }));
}

// Sessions whose state check saw the flow still ACTIVE after the acknowledgement: the blocking ones.
const sawActive = new Set<string>();
subscribe(CHANNELS.poll.name, (message) => {
  const poll = message as { sessionId: string; flowState: string };
  if (poll.flowState === 'ACTIVE') sawActive.add(poll.sessionId);
});
const job = startJob(
  spec,
  { total: SESSIONS + GHOSTS.length, batches },
  {
    credentials: {
      tokens: () => new StaticTokenProvider('dev-token'),
      secrets: () => ['dev-token'],
    },
    log: pino({ level: 'warn' }, process.stderr),
    store: statePath,
  },
);
let polledWhileBlocking = 0;
let ghostsNotFound = 0;
// Each outcome's job row and audit record are committed together before it is reported.
for await (const event of job.events()) {
  if (event.type !== 'outcome') continue;
  const { outcome } = event;
  if (outcome.verified && sawActive.has(outcome.sessionId)) polledWhileBlocking++;
  if (GHOSTS.includes(outcome.sessionId) && outcome.error?.code === 'CR_ERR_RESET_SESSION_NOT_FOUND') {
    ghostsNotFound++;
  }
}
const summary = await job.done;
const store = await openStore(statePath, { readOnly: true });
const chain = await store.verifyAudit();
await store.close();
const stats = emulator.stats();
await emulator.close();
rmSync(dir, { recursive: true, force: true });

process.stdout.write(humanSummary(summary, { jobId: 'demo', dryRun: false }));
process.stdout.write(
  `verified only after polling a blocking webhook call: ${polledWhileBlocking}\n` +
    `connections dropped by the engine: ${stats.drops}; sessions recovered by a retry: ${summary.recovered}\n` +
    `audit log: ${chain.records} records, hash chain ${chain.ok ? 'intact' : `BROKEN at ${chain.problem?.seq}`}\n`,
);
const ok =
  summary.verified === SESSIONS && ghostsNotFound === GHOSTS.length && summary.failed === GHOSTS.length;
process.stdout.write(ok ? 'demo: as expected\n' : 'demo: NOT as expected\n');
process.exitCode = ok ? 0 : 1;

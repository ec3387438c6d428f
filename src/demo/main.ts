/**
 * `npm start`: starts an emulator with 2,000 seeded sessions (a share of them caught in a blocking
 * webhook call) and runs the seed's reset flow against each over the runtime WebSocket protocol:
 * compile and validate the directive, send it, read the acknowledgement, then poll the state check
 * until the flow is RESET and the variables are gone. Three ids that do not exist are included.
 * Exits 0 when every seeded session was reset and verified and the missing ones were reported missing.
 */
import { WebSocket } from 'ws';
import { startEmulator } from '../emulator/index.js';
import {
  checkResetDirective,
  decodeAnswer,
  encodeFrame,
  type EngineAnswer,
  type ResetDirective,
} from '../protocol/index.js';
import { planReset } from '../reset/plan.js';

const SESSIONS = 2000;
const CONNECTIONS = 8;
const VERIFY_TIMEOUT_MS = 30_000;
/** Every layer, as the seed's CompileResetPayload clears. */
const PLAN = planReset();

const emulator = await startEmulator({
  sessions: SESSIONS,
  faults: { blockingShare: 0.02, blockingMs: 400, latencyMs: 2 },
});

/** One connection, one request at a time: the seed's "send, then read the next message". */
async function open(): Promise<(frame: string) => Promise<EngineAnswer>> {
  const url = new URL(emulator.wsUrl);
  url.search = new URLSearchParams({ tenant: 'demo', botId: 'demo-bot', token: 'dev-token' }).toString();
  const ws = new WebSocket(url, 'cognigy-runtime-v1', { origin: 'https://api.cognigy.com' });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return (frame) =>
    new Promise((resolve, reject) => {
      ws.once('message', (data) => {
        const decoded = decodeAnswer(data as Buffer);
        if (decoded.ok) resolve(decoded.value);
        else reject(decoded.error);
      });
      ws.send(frame);
    });
}

function directiveFor(sessionId: string): string {
  const directive: ResetDirective = {
    type: 'SEND',
    sessionId,
    stateClearMatrix: PLAN.stateClearMatrix,
    contextWipeDirective: PLAN.contextWipeDirective,
    maxDurationSec: 900,
    timestamp: new Date().toISOString(),
  };
  const error = checkResetDirective(directive);
  if (error) throw error;
  return encodeFrame(directive);
}

const ids = [
  ...Array.from({ length: SESSIONS }, (_, i) => `session-${i + 1}`),
  'ghost-1',
  'ghost-2',
  'ghost-3',
];
const counts = { verified: 0, polledWhileBlocking: 0, missing: 0, failed: 0 };
const latencies: number[] = [];
const started = performance.now();
let next = 0;

await Promise.all(
  Array.from({ length: CONNECTIONS }, async () => {
    const request = await open();
    while (next < ids.length) {
      const sessionId = ids[next++]!;
      const t0 = performance.now();
      const ack = await request(directiveFor(sessionId));
      if (ack.kind === 'status' && ack.status === 'SESSION_NOT_FOUND') {
        counts.missing++;
        continue;
      }
      if (ack.kind !== 'status' || ack.status !== 'RESET_COMPLETE') {
        counts.failed++;
        continue;
      }
      let delay = 50;
      let polled = false;
      for (;;) {
        const state = await request(encodeFrame({ type: 'QUERY', sessionId, request: 'STATE_CHECK' }));
        if (
          state.kind === 'state' &&
          state.flowState === 'RESET' &&
          Object.keys(state.variables).length === 0
        ) {
          counts.verified++;
          if (polled) counts.polledWhileBlocking++;
          latencies.push(performance.now() - t0);
          break;
        }
        if (performance.now() - t0 > VERIFY_TIMEOUT_MS) {
          counts.failed++;
          break;
        }
        polled = true;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }),
);

const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number): number =>
  Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
await emulator.close();

process.stdout.write(
  [
    `sessions: ${ids.length}  verified: ${counts.verified}  missing: ${counts.missing}  failed: ${counts.failed}`,
    `verified only after polling a blocking webhook call: ${counts.polledWhileBlocking}`,
    `latency p50 ${pct(0.5)} ms  p95 ${pct(0.95)} ms  p99 ${pct(0.99)} ms  throughput ${Math.round(counts.verified / seconds)} resets/s`,
  ].join('\n') + '\n',
);
process.exitCode = counts.verified === SESSIONS && counts.missing === 3 && counts.failed === 0 ? 0 : 1;

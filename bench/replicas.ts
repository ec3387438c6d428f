/**
 * `serve` replicas on one PostgreSQL database (issue 20 §4), against one emulator process, in one run:
 *
 * (a) the same job (`--ids`, default 50,000 sessions) through one replica and through two, in alternating
 *     rounds: verified resets/s of each, and the ratio two ÷ one (the median of the rounds' own);
 * (b) the shared flow-control question: the emulator capped at `--cap` SEND frames a second per tenant (a
 *     cap the replicas are not told), one replica then two, each adapting on the engine's refusals:
 *     throughput ÷ cap, the share of SEND frames refused, and the share of the job's time its last tenth
 *     of sessions took (a replica whose share of the cap was cut, left alone with the last chunks);
 * (c) a back-of-the-envelope model of N replicas on N hosts for a few engine caps (`--engine-caps`):
 *     throughput ≈ min(N × one replica's rate, the cap), with the one-replica rate measured in (a), and
 *     the PostgreSQL server's cores busy at the cap from its CPU per reset measured in (a) (all its
 *     processes, and this database's backends alone), with its transactions and row writes per reset and
 *     the share of busy backends waiting for a lock.
 *
 * On one machine every replica, the emulator and the server share its cores: (a) says what a second
 * replica adds there, not on a host of its own; (c) is where the figures for separate hosts come from.
 * A job's rate is its sessions over its `finishedAt - startedAt` (chunking, claims and the ledgers
 * included).
 *
 *   npm run build && node dist/bench/replicas.js [--ids 50000] [--runs 3] [--cap 1500] [--cap-seconds 15]
 *     [--engine-caps 1000,3000,10000] [--lease 10]
 *   (CR_BENCH_PG_URL names the server's maintenance database; default postgres://postgres@127.0.0.1:5432/test)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { type ChildServer, median, startChild } from './lib/child.js';
import { CLI } from './lib/cli-run.js';
import { pairedRatio, roundOrder } from './lib/paired-bench.js';
import { backendCpu, backendCpuSpent, databaseWrites, serverCpu } from './lib/pg-server.js';

const { values } = parseArgs({
  options: {
    ids: { type: 'string', default: '50000' },
    runs: { type: 'string', default: '3' },
    cap: { type: 'string', default: '1500' },
    'cap-seconds': { type: 'string', default: '15' },
    'engine-caps': { type: 'string', default: '1000,3000,10000' },
    lease: { type: 'string', default: '10' },
  },
});
const count = Number(values.ids);
const runs = Number(values.runs);
const cap = Number(values.cap);
const capIds = Math.round(cap * Number(values['cap-seconds']));
const engineCaps = values['engine-caps'].split(',').map(Number);
const warmIds = Math.min(count, 10_000);
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

const SERVER = process.env['CR_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Client(SERVER);
await admin.connect();
const database = `cr_bench_replicas_${process.pid}`;
await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
await admin.query(`CREATE DATABASE ${database}`);
const storeUrl = new URL(SERVER);
storeUrl.pathname = `/${database}`;
const store = storeUrl.toString();

const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-replicas-bench-'));
const total = warmIds + 2 * runs * count + 2 * capIds;
/** Set up in the `try` below, so that a failure to start still drops the database. */
let emulator: ChildServer | undefined;
/** Reads the chunks' claims in the bench's database; its own backend is left out of the CPU figures. */
const reader = new pg.Client(store);
let readerPid = 0;
let httpUrl = '';
let auth: Record<string, string> = {};
const config = join(dir, 'serve.json');

async function setUp(): Promise<void> {
  await reader.connect();
  readerPid = (await reader.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const engine = await startChild(process.execPath, [CLI, 'emulator', '--sessions', String(total)]);
  emulator = engine;
  httpUrl = engine.info['httpUrl']!;
  writeFileSync(
    config,
    JSON.stringify({
      maxRunningJobs: 1,
      rateLimitPerMinute: 1_000_000,
      tenants: {
        bench: {
          transport: 'runtime-ws',
          url: engine.info['wsUrl'],
          tokenEnv: 'BENCH_ENGINE_TOKEN',
          bot: 'bench',
        },
      },
    }),
  );
  const made = spawnSync(
    process.execPath,
    [CLI, 'keys', 'create', '--scope', 'jobs:read,jobs:write', '--store', store],
    {
      encoding: 'utf8',
    },
  );
  if (made.status !== 0) throw new Error(`keys create exited ${made.status}: ${made.stderr}`);
  auth = { authorization: `Bearer ${(JSON.parse(made.stdout) as { key: string }).key}` };
}

/** The replicas running now; each in a folder of its own, as on a host of its own. */
const replicas: ChildServer[] = [];
async function useReplicas(n: number): Promise<void> {
  while (replicas.length > n) await replicas.pop()!.stop();
  while (replicas.length < n) {
    const cwd = mkdtempSync(join(dir, 'replica-'));
    const args = [
      CLI,
      'serve',
      '--config',
      config,
      '--store',
      store,
      '--lease',
      values.lease,
      '--log-level',
      'warn',
    ];
    replicas.push(
      await startChild(process.execPath, args, 30_000, {
        cwd,
        env: { ...process.env, BENCH_ENGINE_TOKEN: 'dev-token' },
      }),
    );
  }
}

let cursor = 0;
const take = (n: number): string[] => Array.from({ length: n }, () => `session-${++cursor}`);
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface EmulatorStats {
  sends: number;
  answers: Record<string, number>;
}
const engineStats = async (): Promise<EmulatorStats> =>
  (await (await fetch(`${httpUrl}/emulator/stats`)).json()) as EmulatorStats;
const setCap = async (messageRate: number): Promise<void> => {
  const res = await fetch(`${httpUrl}/emulator/faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messageRate }),
  });
  if (res.status !== 200) throw new Error(`PUT /emulator/faults answered ${res.status}`);
};

interface JobView {
  state: string;
  startedAt?: string;
  finishedAt?: string;
  counts: { verified: number; failed: number };
}

interface Sample {
  rate: number;
  /** The most distinct replicas seen holding its chunks at once. */
  owners: number;
  /** Of the database's busy backends seen while it ran, the share waiting for a lock. */
  lockedShare: number;
  /** The share of the job's time its last tenth of sessions took: a replica left behind shows here. */
  tailShare: number;
  serverUsPerReset: number | undefined;
  /** This database's backends alone: blind to other databases' load on a shared server. */
  backendUsPerReset: number;
  commitsPerReset: number;
  rowsPerReset: number;
  sends: number;
  refused: number;
}

/**
 * How many replicas hold a live claim on a chunk of the job now, and how many of the database's backends
 * are busy and how many of those wait for a lock (the audit chain's head is one row every writer locks).
 */
async function sample(jobId: string): Promise<{ owners: number; busy: number; locked: number }> {
  const { rows } = await reader.query<{ owners: number; busy: number; locked: number }>(
    `SELECT (SELECT count(DISTINCT owner)::int FROM job_chunks
              WHERE job_id = $1 AND NOT done AND owner IS NOT NULL AND claimed_until > clock_timestamp()) AS owners,
            count(*) FILTER (WHERE state = 'active')::int AS busy,
            count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock')::int AS locked
       FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    [jobId],
  );
  return rows[0]!;
}

/** One job of `ids` through the first replica, followed to its end. */
async function job(ids: string[]): Promise<Sample> {
  const cpuBefore = serverCpu();
  const backendsBefore = await backendCpu(admin, database, readerPid);
  const writesBefore = await databaseWrites(admin, database);
  const engineBefore = await engineStats();
  const wallStart = performance.now();
  const url = replicas[0]!.info['url']!;
  const res = await fetch(`${url}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'bench', sessions: ids }),
  });
  if (res.status !== 201) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  let owners = 0;
  let busy = 0;
  let locked = 0;
  let ninetyAt: number | undefined;
  let view: JobView;
  for (;;) {
    view = (await (await fetch(`${url}/v1/jobs/${id}`, { headers: auth })).json()) as JobView;
    const seen = await sample(id);
    owners = Math.max(owners, seen.owners);
    busy += seen.busy;
    locked += seen.locked;
    if (ninetyAt === undefined && view.counts.verified >= 0.9 * ids.length) ninetyAt = performance.now();
    if (FINISHED.has(view.state)) break;
    await pause(100);
  }
  const wallEnd = performance.now();
  const wallSec = (wallEnd - wallStart) / 1000;
  if (view.counts.verified !== ids.length) throw new Error(`job ${id}: ${JSON.stringify(view)}`);
  const cpuAfter = serverCpu();
  const backendsAfter = await backendCpu(admin, database, readerPid);
  await pause(600); // the statistics collector reports a little behind
  const writesAfter = await databaseWrites(admin, database);
  const engineAfter = await engineStats();
  const seconds =
    view.startedAt !== undefined && view.finishedAt !== undefined
      ? (Date.parse(view.finishedAt) - Date.parse(view.startedAt)) / 1000
      : wallSec;
  const limited = (s: EmulatorStats): number => s.answers['RATE_LIMITED'] ?? 0;
  return {
    rate: ids.length / seconds,
    owners,
    lockedShare: locked / Math.max(1, busy),
    tailShare: (wallEnd - (ninetyAt ?? wallEnd)) / (wallEnd - wallStart),
    serverUsPerReset:
      cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / ids.length,
    backendUsPerReset: backendCpuSpent(backendsBefore, backendsAfter) / ids.length,
    commitsPerReset: (writesAfter.commits - writesBefore.commits) / ids.length,
    rowsPerReset: (writesAfter.rows - writesBefore.rows) / ids.length,
    sends: engineAfter.sends - engineBefore.sends,
    refused: limited(engineAfter) - limited(engineBefore),
  };
}

const fixed = (n: number | undefined, digits = 1): number | null =>
  n === undefined ? null : Number(n.toFixed(digits));
const pct = (n: number): string => `${(n * 100).toFixed(2)} %`;
const tails = (samples: Sample[]): string =>
  samples.map((s) => `${Math.round(s.tailShare * 100)} %`).join(', ');

try {
  await setUp();
  await useReplicas(1);
  await job(take(warmIds));
  // (a) one replica against two, in alternating rounds.
  const two: Sample[] = [];
  const one: Sample[] = [];
  for (let round = 0; round < runs; round++) {
    for (const side of roundOrder(round)) {
      await useReplicas(side === 'on' ? 2 : 1);
      (side === 'on' ? two : one).push(await job(take(count)));
    }
  }
  const ratio = pairedRatio(
    two.map((s) => s.rate),
    one.map((s) => s.rate),
  );
  process.stdout.write(
    `(a) ${count} sessions a job, medians of ${runs} rounds: one replica ${ratio.off}/s, two ${ratio.on}/s; ` +
      `two ÷ one ${ratio.ratio.toFixed(3)} (rounds ${ratio.ratioRange.join('-')}); ` +
      `replicas seen holding chunks at once with two: ${two.map((s) => s.owners).join(', ')}; ` +
      `the last 10 % of sessions took ${tails(one)} of a job's time with one, ${tails(two)} with two; ` +
      `busy backends waiting for a lock: ${pct(median(one.map((s) => s.lockedShare)))} with one, ` +
      `${pct(median(two.map((s) => s.lockedShare)))} with two\n`,
  );

  // (b) a capped engine, one replica then two, each adapting on its refusals.
  await setCap(cap);
  const capped: Record<string, Sample> = {};
  for (const n of [1, 2]) {
    await useReplicas(n);
    capped[n] = await job(take(capIds));
  }
  await setCap(0);
  for (const n of [1, 2]) {
    const s = capped[n]!;
    process.stdout.write(
      `(b) cap ${cap}/s, ${capIds} sessions, ${n} replica${n === 1 ? '' : 's'}: throughput ÷ cap ` +
        `${(s.rate / cap).toFixed(3)}, refused ${pct(s.refused / Math.max(1, s.sends))} of SEND frames; ` +
        `the last 10 % of sessions took ${tails([s])} of its time\n`,
    );
  }

  // (c) the model.
  const all = [...one, ...two];
  const pgUs = median(all.map((s) => s.serverUsPerReset).filter((v): v is number => v !== undefined));
  const backendUs = median(all.map((s) => s.backendUsPerReset));
  const commits = median(all.map((s) => s.commitsPerReset));
  const rows = median(all.map((s) => s.rowsPerReset));
  const r1 = ratio.off;
  const model = engineCaps.map((engineCap) => ({
    engineCap,
    perSec: [1, 2, 4, 8, 16].map((n) => Math.round(Math.min(n * r1, engineCap))),
    capBindsAt: Math.ceil(engineCap / r1),
    /** Server cores busy at the cap: by all its processes, and by this database's backends alone. */
    serverCores: fixed((engineCap * pgUs) / 1e6, 2),
    backendCores: fixed((engineCap * backendUs) / 1e6, 2),
  }));
  process.stdout.write(
    `(c) N replicas on N hosts ≈ min(N × ${r1}/s, the engine's cap), for N = 1, 2, 4, 8, 16:\n` +
      model
        .map(
          (m) =>
            `    cap ${m.engineCap}/s: ${m.perSec.join(', ')}/s; the cap binds from N=${m.capBindsAt}; ` +
            `PostgreSQL busy at the cap ≈ ${m.serverCores ?? '?'} cores (${m.backendCores} by this database's backends)\n`,
        )
        .join('') +
      `    PostgreSQL per reset: ${fixed(pgUs) ?? '?'} µs of server CPU (${fixed(backendUs)} µs by this ` +
      `database's backends), ${fixed(commits, 3)} transactions (reads included), ${fixed(rows, 2)} row writes\n`,
  );
  process.stdout.write(
    `${JSON.stringify({
      bench: 'replicas',
      ids: count,
      runs,
      oneReplicaPerSec: ratio.off,
      twoReplicasPerSec: ratio.on,
      ratio: ratio.ratio,
      ratioRange: ratio.ratioRange,
      cap,
      capIds,
      capped: Object.fromEntries(
        Object.entries(capped).map(([n, s]) => [
          n,
          {
            throughputOverCap: fixed(s.rate / cap, 3),
            refusedShare: fixed(s.refused / Math.max(1, s.sends), 4),
          },
        ]),
      ),
      lockedShare: {
        one: fixed(median(one.map((s) => s.lockedShare)), 3),
        two: fixed(median(two.map((s) => s.lockedShare)), 3),
      },
      postgres: {
        serverUsPerReset: fixed(pgUs),
        backendUsPerReset: fixed(backendUs),
        commitsPerReset: fixed(commits, 3),
        rowsPerReset: fixed(rows, 2),
      },
      model: { oneReplicaPerSec: r1, replicas: [1, 2, 4, 8, 16], caps: model },
    })}\n`,
  );
} finally {
  await useReplicas(0);
  await emulator?.stop();
  await reader.end().catch(() => undefined);
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}

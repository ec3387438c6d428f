/**
 * The service under watch vs the CLI: the same job (the same number of fresh sessions, default
 * concurrency and connections, audited, with a job ledger) started through `cognigy-reset serve`'s API
 * while 50 clients poll its status (each once a second by default, as a dashboard would; `--poll-ms 100`
 * for ten times that) and one follows its Server-Sent Events, and run by
 * `cognigy-reset reset --job` (a child process), against one emulator (another process), in alternating
 * rounds. Prints the throughput ratio (service / CLI, the median of each round's own; goal >= 0.9) and the
 * status requests' p99 latency (the median of the rounds'; goal < 20 ms), beside its floor on this machine:
 * the p99 of a bare server in a process of its own that does nothing but answer (`lib/floor-server.ts`),
 * polled by as many clients alike during the service's rounds. On a machine whose cores the emulator and
 * the job fill, a request waits for its process to be scheduled whatever the process does.
 *
 * The service's throughput is its job's sessions over `finishedAt - startedAt` (opening and closing the
 * job's ledger included); the CLI's is its summary's (the bulk run alone): the comparison leans against
 * the service. `--embedded` serves the emulator inside the service (`serve --emulator`), as the one-command
 * demo does, instead of the emulator process the CLI uses.
 *
 *   npm run build && node dist/bench/serve.js [--ids 100000] [--rounds 3] [--clients 50] [--poll-ms 1000] [--embedded]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { median, startChild } from './lib/child.js';
import { CLI, cliRun } from './lib/cli-run.js';

const { values } = parseArgs({
  options: {
    ids: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '50' },
    'poll-ms': { type: 'string', default: '1000' },
    embedded: { type: 'boolean', default: false },
  },
});
const count = Number(values.ids);
const rounds = Number(values.rounds);
const clients = Number(values.clients);
const pollMs = Number(values['poll-ms']);
const warmCount = Math.min(count, 10_000);
const total = 2 * (rounds * count + warmCount);

const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-serve-bench-'));
const state = join(dir, 'serve.sqlite');
const emulator = await startChild(process.execPath, [CLI, 'emulator', '--sessions', String(total)]);
const wsUrl = emulator.info['wsUrl']!;
// The tenant's token comes from the environment, as a config names it; the rate limit is out of the way.
process.env['BENCH_ENGINE_TOKEN'] = 'dev-token';
const config = join(dir, 'serve.json');
writeFileSync(
  config,
  JSON.stringify({
    maxRunningJobs: 1,
    rateLimitPerMinute: 1_000_000,
    tenants: values.embedded
      ? {}
      : { bench: { transport: 'runtime-ws', url: wsUrl, tokenEnv: 'BENCH_ENGINE_TOKEN', bot: 'bench' } },
  }),
);
const made = spawnSync(
  process.execPath,
  [CLI, 'keys', 'create', '--scope', 'jobs:read,jobs:write', '--state', state],
  {
    encoding: 'utf8',
  },
);
if (made.status !== 0) throw new Error(`keys create exited ${made.status}: ${made.stderr}`);
const key = (JSON.parse(made.stdout) as { key: string }).key;
const serveArgs = [CLI, 'serve', '--config', config, '--state', state, '--log-level', 'warn'];
if (values.embedded) serveArgs.push('--emulator', '--sessions', String(total));
const service = await startChild(process.execPath, serveArgs);
// The floor: a process that answers at once and does nothing else, polled as the status route is.
const floor = await startChild(process.execPath, [
  new URL('./lib/floor-server.js', import.meta.url).pathname,
]);
const url = service.info['url']!;
const tenant = values.embedded ? 'demo' : 'bench';
const auth = { authorization: `Bearer ${key}` };

let cursor = 0;
const take = (n: number): string[] => Array.from({ length: n }, () => `session-${++cursor}`);
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Job {
  state: string;
  startedAt: string;
  finishedAt: string;
  counts: { total: number; verified: number; reset: number; failed: number };
}
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** One status client: polls every `pollMs` until the job finished; the latency of each answer. */
async function poller(id: string, latencies: number[], startAfter: number): Promise<void> {
  await pause(startAfter);
  for (;;) {
    const started = performance.now();
    const res = await fetch(`${url}/v1/jobs/${id}`, { headers: auth });
    const job = (await res.json()) as Job;
    latencies.push(performance.now() - started);
    if (res.status !== 200) throw new Error(`status answered ${res.status}`);
    if (FINISHED.has(job.state)) return;
    await pause(pollMs);
  }
}

/**
 * The floor's clients poll it through the whole benchmark, CLI rounds too, so that both sides bear their
 * load alike; a service round reads the latencies of its own time (`floorLatencies`).
 */
let floorLatencies: number[] = [];
let benchDone = false;
async function floorPoller(startAfter: number): Promise<void> {
  await pause(startAfter);
  while (!benchDone) {
    const started = performance.now();
    const into = floorLatencies;
    await (await fetch(floor.info['url']!)).text();
    into.push(performance.now() - started);
    await pause(pollMs);
  }
}
const floors = Array.from({ length: clients }, (_, i) => floorPoller(((i + 0.5) * pollMs) / clients));

const p99Of = (latencies: number[]): number => {
  const sorted = [...latencies].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.ceil(0.99 * sorted.length) - 1]!;
};

/** The SSE follower: reads the stream to its end; how many events it got. */
async function follower(id: string): Promise<number> {
  const res = await fetch(`${url}/v1/jobs/${id}/events`, { headers: auth });
  const text = await res.text();
  return text.split('\n\n').filter((block) => block.startsWith('event:')).length;
}

let lastJob = '';

/** The status route's answers as the service timed them: its histogram's cumulative counts, by bound. */
interface ServiceSide {
  buckets: Map<number, number>;
  /** The API thread's event-loop delay p99 since the last scrape (prom-client resets it at each), ms. */
  loopP99Ms: number;
}

async function scrape(): Promise<ServiceSide> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const buckets = new Map<number, number>();
  let loopP99Ms = 0;
  for (const line of text.split('\n')) {
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('nodejs_eventloop_lag_p99_seconds ')) loopP99Ms = value * 1000;
    if (
      !line.startsWith('cognigy_reset_http_request_duration_seconds_bucket{') ||
      !line.includes('method="GET",route="/v1/jobs/:id",status_code="200"')
    )
      continue;
    const le = /le="([^"]+)"/.exec(line)![1]!;
    buckets.set(le === '+Inf' ? Infinity : Number(le) * 1000, value);
  }
  return { buckets, loopP99Ms };
}

/**
 * The bound of the service's own p99 for the status answers between two scrapes: the smallest histogram
 * bucket (ms) that holds 99 % of them. It leaves out the wait to be read and the way back, which the
 * clients' own p99 includes.
 */
function serviceP99(before: ServiceSide, after: ServiceSide): number {
  const delta = [...after.buckets].map(([le, n]) => [le, n - (before.buckets.get(le) ?? 0)] as const);
  const total = delta.find(([le]) => le === Infinity)?.[1] ?? 0;
  return delta.sort((a, b) => a[0] - b[0]).find(([, n]) => n >= 0.99 * total)?.[0] ?? 0;
}

async function serviceRun(ids: string[]): Promise<{
  perSec: number;
  p99: number;
  floorP99: number;
  polls: number;
  events: number;
  serviceP99: number;
  loopP99: number;
  benchLoopP99: number;
}> {
  const before = await scrape();
  const res = await fetch(`${url}/v1/jobs?tenant=${tenant}`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'text/plain' },
    body: `${ids.join('\n')}\n`,
  });
  if (res.status !== 201) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  lastJob = id;
  const latencies: number[] = [];
  floorLatencies = [];
  // This process's own delays: a poller's clock runs on to the moment it reads its answer.
  const benchLoop = monitorEventLoopDelay({ resolution: 1 });
  benchLoop.enable();
  // Spread over one polling interval, as independent clients would be.
  const polls = Array.from({ length: clients }, (_, i) => poller(id, latencies, (i * pollMs) / clients));
  const [events] = await Promise.all([follower(id), ...polls]);
  const floorP99 = p99Of(floorLatencies);
  benchLoop.disable();
  const after = await scrape();
  const job = (await (await fetch(`${url}/v1/jobs/${id}`, { headers: auth })).json()) as Job;
  if (job.counts.verified !== ids.length) throw new Error(`service job verified ${job.counts.verified}`);
  const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
  return {
    perSec: (job.counts.reset + job.counts.failed) / seconds,
    p99: p99Of(latencies),
    floorP99,
    polls: latencies.length,
    events,
    serviceP99: serviceP99(before, after),
    loopP99: after.loopP99Ms,
    benchLoopP99: benchLoop.percentile(99) / 1e6,
  };
}

/** The service process's CPU time, in ms (Linux: /proc), or undefined. */
function serviceCpuMs(): number | undefined {
  try {
    const fields = readFileSync(`/proc/${service.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** What one status request costs the service, in CPU µs, with no job running: `n` requests, 50 at a time. */
async function statusCost(id: string, n: number): Promise<number | undefined> {
  const before = serviceCpuMs();
  let sent = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (sent++ < n) await (await fetch(`${url}/v1/jobs/${id}`, { headers: auth })).arrayBuffer();
    }),
  );
  const after = serviceCpuMs();
  return before === undefined || after === undefined ? undefined : ((after - before) / n) * 1000;
}

async function cliJob(name: string, ids: string[]): Promise<number> {
  const run = await cliRun({ dir, name, ids, wsUrl, args: ['--job', name] });
  if (run.verified !== ids.length) throw new Error(`${name}: verified ${run.verified}`);
  return run.throughput;
}

try {
  await serviceRun(take(warmCount));
  await cliJob('warm', take(warmCount));
  const service: number[] = [];
  const cli: number[] = [];
  const ratios: number[] = [];
  const p99s: number[] = [];
  const floorP99s: number[] = [];
  const serviceP99s: number[] = [];
  const loopP99s: number[] = [];
  const benchLoopP99s: number[] = [];
  let polls = 0;
  let events = 0;
  for (let round = 0; round < rounds; round++) {
    // Alternating which goes first, so a drift in the machine's speed falls on both alike.
    const runService = async (): Promise<number> => {
      const s = await serviceRun(take(count));
      p99s.push(s.p99);
      floorP99s.push(s.floorP99);
      serviceP99s.push(s.serviceP99);
      loopP99s.push(s.loopP99);
      benchLoopP99s.push(s.benchLoopP99);
      polls += s.polls;
      events += s.events;
      return s.perSec;
    };
    let s: number;
    let c: number;
    if (round % 2 === 0) {
      s = await runService();
      c = await cliJob(`cli-${round}`, take(count));
    } else {
      c = await cliJob(`cli-${round}`, take(count));
      s = await runService();
    }
    service.push(s);
    cli.push(c);
    ratios.push(s / c);
  }
  await statusCost(lastJob, 2000);
  const cost = await statusCost(lastJob, 20_000);
  const result = {
    bench: 'serve',
    ids: count,
    rounds,
    clients,
    pollMs,
    embedded: values.embedded,
    servicePerSec: Math.round(median(service)),
    cliPerSec: Math.round(median(cli)),
    ratio: Number(median(ratios).toFixed(3)),
    ratios: ratios.map((r) => Number(r.toFixed(3))),
    statusP99Ms: Number(median(p99s).toFixed(1)),
    statusP99MsRounds: p99s.map((p) => Number(p.toFixed(1))),
    floorP99Ms: Number(median(floorP99s).toFixed(1)),
    statusOverFloor: Number(median(p99s.map((p, i) => p / floorP99s[i]!)).toFixed(2)),
    floorP99MsRounds: floorP99s.map((p) => Number(p.toFixed(1))),
    serviceSideP99MsAtMost: serviceP99s,
    apiLoopDelayP99MsRounds: loopP99s.map((p) => Number(p.toFixed(1))),
    benchLoopDelayP99MsRounds: benchLoopP99s.map((p) => Number(p.toFixed(1))),
    statusRequests: polls,
    sseEvents: events,
    statusCpuUs: cost === undefined ? null : Math.round(cost),
  };
  process.stdout.write(
    `verified resets/s, medians of ${rounds} rounds: service ${result.servicePerSec} (${clients} clients polling every ${pollMs} ms, one following SSE), CLI ${result.cliPerSec}\n` +
      `ratio service/CLI ${result.ratio} (rounds ${result.ratios.join(', ')}; goal >= 0.9); ` +
      `status p99 ${result.statusP99Ms} ms (rounds ${result.statusP99MsRounds.join(', ')}; goal < 20 ms); ` +
      `the floor's p99 ${result.floorP99Ms} ms (rounds ${result.floorP99MsRounds.join(', ')}: a process that does nothing but answer, polled alike), status ÷ floor ${result.statusOverFloor}; ` +
      `as the service timed its answers, p99 at most ${result.serviceSideP99MsAtMost.join(', ')} ms, its API thread's event-loop delay p99 ${result.apiLoopDelayP99MsRounds.join(', ')} ms; ` +
      `this process's own event-loop delay p99 ${result.benchLoopDelayP99MsRounds.join(', ')} ms; ` +
      `a status request costs the service ${result.statusCpuUs ?? '?'} µs of CPU\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  benchDone = true;
  await Promise.all(floors);
  await service.stop();
  await floor.stop();
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
}

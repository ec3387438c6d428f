/**
 * The adaptive depth on a simulated clock: the in-flight limit grows while latency stays near its floor,
 * is cut when latency rises, never passes its ceiling nor drops below its minimum; against a modelled
 * engine it settles where the engine is busy and latency stays near its floor. Then with default flags
 * through the CLI: the summary, the progress line, the metrics and the debug log say what it did.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AdaptiveDepth, type AdaptiveDepthOptions } from '../src/reset/flow-control/adaptive-depth.js';
import { DepthLimiter } from '../src/reset/flow-control/depth-limiter.js';
import { startEmulator } from '../src/emulator/index.js';
import { parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { withDeadline } from './helpers/ws.js';

const full = (d: AdaptiveDepth): { inFlight: number; waited: boolean } => ({
  inFlight: d.limit,
  waited: false,
});

/** A simulated clock, in ms: each answer moves it on by its latency. */
const clock = { t: 0 };

/** Feeds `n` rounds of answers that each took `latencyMs`, the limit reached. */
function rounds(d: AdaptiveDepth, n: number, latencyMs: number | (() => number)): void {
  const latency = typeof latencyMs === 'number' ? () => latencyMs : latencyMs;
  for (let r = 0; r < n; r++) {
    const size = Math.max(8, d.limit);
    for (let i = 0; i < size; i++) {
      const ms = latency();
      clock.t += ms;
      d.observe(ms, full(d), clock.t);
    }
  }
}

/**
 * An engine as a queue: it serves `capacity` requests a second one after another, then answers each
 * `baseMs` later. The client keeps the limit in flight. Returns what a user would see.
 */
function model(
  options: AdaptiveDepthOptions,
  engine: { baseMs: number; capacity: number },
  seconds = 20,
): { throughput: number; p99: number; floor: number; maxLimit: number; limit: number } {
  let t = 0;
  const d = new AdaptiveDepth({ ...options, now: () => t });
  let serverFree = 0;
  const flight: { at: number; sentAt: number }[] = [];
  const latencies: number[] = [];
  let done = 0;
  let maxLimit = 0;
  while (t < seconds * 1000) {
    while (flight.length < d.limit) {
      serverFree = Math.max(t, serverFree) + 1000 / engine.capacity;
      flight.push({ at: serverFree + engine.baseMs, sentAt: t });
    }
    // Served in order, with the same base latency: answers come in the order they were sent.
    const answer = flight.shift()!;
    t = Math.max(t, answer.at);
    const latency = t - answer.sentAt;
    // The second half: what the run settled to.
    if (t > seconds * 500) {
      latencies.push(latency);
      maxLimit = Math.max(maxLimit, d.limit);
    }
    d.observe(latency, { inFlight: flight.length + 1, waited: false }, t);
    done++;
  }
  latencies.sort((a, b) => a - b);
  return {
    throughput: done / seconds,
    p99: latencies[Math.floor(latencies.length * 0.99)]!,
    floor: d.floorMs,
    maxLimit,
    limit: d.limit,
  };
}

describe('adaptive depth (simulated clock)', () => {
  it('grows while latency stays near its floor: doubling each round, never past its ceiling', () => {
    const d = new AdaptiveDepth({ initialLimit: 16, ceiling: 300, roundMs: 0 });
    rounds(d, 1, 2);
    assert.equal(d.limit, 32);
    rounds(d, 1, 2.5);
    assert.equal(d.limit, 64);
    rounds(d, 20, 3);
    assert.equal(d.limit, 300);
    assert.equal(d.cuts, 0);
  });

  it('cuts when latency rises past its target, by target ÷ latency, and says why', () => {
    const d = new AdaptiveDepth({ initialLimit: 100, tolerance: 2, slackMs: 5, roundMs: 0 });
    rounds(d, 1, 20);
    assert.equal(d.floorMs, 20);
    assert.equal(d.targetMs, 40);
    const before = d.limit;
    let cut;
    for (let i = 0; i < before && cut === undefined; i++) cut = d.observe(60, full(d), (clock.t += 60));
    assert.ok(cut !== undefined, 'a round at 3× the floor made no cut');
    assert.deepEqual(cut, {
      from: 200,
      to: Math.floor(200 * (40 / 60)),
      latencyMs: 60,
      targetMs: 40,
      floorMs: 20,
    });
    assert.equal(d.limit, cut.to);
    assert.equal(d.cuts, 1);
    assert.equal(d.lastCut?.at, clock.t);
    // After a cut it grows by about √limit a round, not by doubling.
    const after = d.limit;
    rounds(d, 1, 30);
    assert.equal(d.limit, after + Math.round(Math.sqrt(after)));
  });

  it('never drops below its minimum, however slow the answers get', () => {
    const d = new AdaptiveDepth({ initialLimit: 64, minLimit: 4, roundMs: 0 });
    rounds(d, 1, 1);
    let lowest = d.limit;
    let slow = 10;
    for (let i = 0; i < 2_000; i++) {
      d.observe((slow *= 1.01), full(d), (clock.t += slow));
      lowest = Math.min(lowest, d.limit);
    }
    assert.equal(lowest, 4);
    assert.ok(d.cuts > 3);
  });

  it('follows an engine that became slower for good: still slow at its minimum, that latency is the floor', () => {
    const d = new AdaptiveDepth({ initialLimit: 32, minLimit: 4, roundMs: 0 });
    rounds(d, 3, 1);
    assert.equal(d.floorMs, 1);
    for (let i = 0; i < 5_000 && d.limit > 4; i++) {
      clock.t += 50;
      d.observe(50, full(d), clock.t);
    }
    assert.equal(d.limit, 4, 'latency 50× the floor did not cut the limit to its minimum');
    assert.equal(d.floorMs, 1);
    rounds(d, 1, 50);
    assert.equal(d.floorMs, 50);
    rounds(d, 20, 50);
    assert.ok(d.limit > 32, `still ${d.limit} in flight once 50 ms is the floor`);
  });

  it('lets a round last at least roundMs: a stall shorter than that does not pass for a queue', () => {
    let t = 0;
    const d = new AdaptiveDepth({ initialLimit: 16, roundMs: 50, now: () => t });
    // 50 ms of answers at 1 ms, then a stall of 10 ms that delays the answers it holds up.
    for (; t < 50; t += 0.5) d.observe(1, full(d));
    for (; t < 60; t += 0.5) d.observe(10, full(d));
    for (; t < 200; t += 0.5) d.observe(1, full(d));
    assert.equal(d.cuts, 0);
    assert.ok(d.limit > 16);
  });

  it('holds while the limit is not reached, or while the send rate makes the sends wait', () => {
    const d = new AdaptiveDepth({ initialLimit: 16, roundMs: 0 });
    for (let i = 0; i < 160; i++) d.observe(1, { inFlight: 3, waited: false }, 0);
    assert.equal(d.limit, 16, 'grew though never more than 3 were in flight');
    for (let i = 0; i < 160; i++) d.observe(1, { inFlight: 16, waited: true }, 0);
    assert.equal(d.limit, 16, 'grew though the rate, not the depth, held the sends back');
  });

  it('a ceiling below the defaults is the first limit, the minimum and the most', () => {
    const d = new AdaptiveDepth({ ceiling: 1, roundMs: 0 });
    assert.equal(d.limit, 1);
    rounds(d, 5, 1);
    rounds(d, 5, 100);
    assert.equal(d.limit, 1);
  });

  it('against an engine that answers after 50 ms: the limit stays bounded, and p99 latency within 3× the floor', () => {
    const r = model({}, { baseMs: 50, capacity: 8_000 });
    assert.ok(r.throughput >= 0.9 * 8_000, `${r.throughput}/s of the engine's 8,000/s`);
    assert.ok(r.maxLimit < 1024, `the limit reached its ceiling (${r.maxLimit})`);
    assert.ok(r.p99 <= 3 * r.floor, `p99 ${r.p99} ms against a floor of ${r.floor} ms`);
  });

  it('against a fast engine: as busy as it can be, with a queue of a few milliseconds', () => {
    const r = model({}, { baseMs: 0.2, capacity: 15_000 });
    assert.ok(r.throughput >= 0.95 * 15_000, `${r.throughput}/s of the engine's 15,000/s`);
    assert.ok(r.p99 <= r.floor + 10, `p99 ${r.p99} ms against a floor of ${r.floor} ms`);
  });

  it('a limiter lets at most its limit through, and more as the limit grows', async () => {
    const d = new AdaptiveDepth({ initialLimit: 8, ceiling: 16, roundMs: 0 });
    const limiter = new DepthLimiter(d);
    for (let i = 0; i < 8; i++) assert.equal(limiter.acquire(), undefined);
    const waiting = [limiter.acquire(), limiter.acquire()];
    assert.ok(waiting.every((w) => w !== undefined));
    assert.equal(limiter.inFlight, 8);
    // A round near the floor with the limit reached: the limit doubles, and a release lets both in.
    for (let i = 0; i < 8; i++) limiter.observe(1, false);
    assert.equal(limiter.limit, 16);
    limiter.release();
    assert.deepEqual(await withDeadline(Promise.all(waiting), 1_000, 'the waiting slots'), [true, true]);
    assert.equal(limiter.inFlight, 9);
    // A run that stops sends its waiting workers away without a slot.
    for (let i = 0; i < 7; i++) assert.equal(limiter.acquire(), undefined);
    const late = limiter.acquire();
    limiter.abandon();
    assert.equal(await late, false);
    assert.equal(limiter.inFlight, 16);
    const fixed = new DepthLimiter(2);
    assert.equal(fixed.ceiling, 2);
    assert.equal(fixed.observe(1_000, false), undefined);
  });
});

describe('reset: the adaptive depth is the default', () => {
  it('shows the limit on the progress line, in the metrics and the summary, and logs each cut with its reason', async (t) => {
    const emu = await startEmulator({ sessions: 600 });
    t.after(() => emu.close());
    const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-depth-'));
    const metricsFile = join(dir, 'metrics.prom');
    const ids = Array.from({ length: 600 }, (_, i) => `session-${i + 1}`);
    const run = startCli(
      ['reset', ...ids, '--json', '--no-audit', '--log-level', 'debug', '--progress-interval', '0.05'].concat(
        ['--metrics-file', metricsFile],
      ),
      {
        COGNIGY_WS_URL: emu.wsUrl,
        COGNIGY_TENANT_ID: 't',
        COGNIGY_BOT_ID: 'b',
        COGNIGY_API_TOKEN: 'dev-token',
        COGNIGY_RESET_STATE: join(dir, 'state.sqlite'),
      },
    );
    // A hundred sessions in, the engine slows down to 20 ms an answer: the limit must be cut.
    await waitForOutput(run, (out) => out.split('\n').length > 100);
    emu.setFaults({ latencyMs: 20 });
    const result = await withDeadline(run.done, 60_000, 'the run');
    assert.equal(result.code, 0, result.stderr);
    const { summary } = parseJsonLines(result.stdout);
    assert.equal(summary!.verified, 600);
    const depth = (summary!['flowControl'] as Record<string, any>)['depth'] as Record<string, any>;
    assert.equal(depth['mode'], 'adaptive');
    assert.equal(depth['ceiling'], 1024);
    assert.ok(depth['cuts'] >= 1, `no cut though latency rose: ${JSON.stringify(depth)}`);
    assert.ok(depth['floorMs'] > 0 && depth['targetMs'] > depth['floorMs'], JSON.stringify(depth));
    const logs = result.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>);
    const cuts = logs.filter((l) => l['msg'] === 'in-flight limit cut');
    assert.equal(cuts.length, depth['cuts']);
    for (const cut of cuts) {
      assert.ok(cut['to'] < cut['from'] && cut['latencyMs'] > cut['targetMs'], JSON.stringify(cut));
      assert.match(cut['reason'], /latency/);
    }
    assert.match(result.stderr, /progress: \d+\/600 .* in-flight limit \d+/);
    const metrics = readFileSync(metricsFile, 'utf8');
    assert.match(metrics, new RegExp(`^cognigy_reset_in_flight_limit ${depth['limit']}$`, 'm'));
    assert.match(metrics, /^cognigy_reset_send_rate \d/m);
    assert.match(metrics, /^cognigy_reset_refused_sends_total 0$/m);
  });

  it('--fixed-concurrency keeps --concurrency in flight though latency rises; without --concurrency it is refused before anything is sent', async (t) => {
    const emu = await startEmulator({ sessions: 200 });
    t.after(() => emu.close());
    const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-depth-fixed-'));
    const env = {
      COGNIGY_WS_URL: emu.wsUrl,
      COGNIGY_TENANT_ID: 't',
      COGNIGY_BOT_ID: 'b',
      COGNIGY_API_TOKEN: 'dev-token',
      COGNIGY_RESET_STATE: join(dir, 'state.sqlite'),
    };
    const ids = Array.from({ length: 200 }, (_, i) => `session-${i + 1}`);
    emu.setFaults({ latencyMs: 20 });
    const result = await runCli(
      ['reset', ...ids, '--json', '--no-audit', '--concurrency', '24', '--fixed-concurrency'],
      env,
    );
    assert.equal(result.code, 0, result.stderr);
    const { summary } = parseJsonLines(result.stdout);
    assert.equal(summary!.verified, 200);
    const depth = (summary!['flowControl'] as Record<string, any>)['depth'] as Record<string, any>;
    assert.deepEqual(depth, { mode: 'fixed', limit: 24 });
    const refused = await runCli(['reset', 'session-1', '--fixed-concurrency'], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /CR_ERR_OPT_MISSING: .*--concurrency/);
    assert.equal(emu.stats().resetsApplied, 200, 'the refused run sent nothing');
  });
});

/**
 * `serve --emulator` stopped with SIGTERM in the middle of a job and started again on the same state
 * file: the in-process emulator comes back on another port, and the job still runs on to the end. Nothing
 * is lost and no session the first run verified is sent again (the new emulator's counters, the outcomes
 * and the audit records say so). Real child processes, a real state file.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { type CliRun, runCli, startCli, waitForOutput, waitForStderr } from './helpers/cli.js';
import { withDeadline } from './helpers/ws.js';

const N = 6000;

interface Served {
  run: CliRun;
  url: string;
  /** The in-process emulator's inspection routes. */
  emulator: string;
}

async function serve(t: TestContext, state: string): Promise<Served> {
  const run = startCli(['serve', '--emulator', '--sessions', String(N), '--port', '0', '--state', state], {});
  t.after(() => run.child.kill('SIGKILL'));
  await waitForOutput(run, (out) => out.includes('\n'));
  const { url } = JSON.parse(run.stdout().split('\n')[0]!) as { url: string };
  // The emulator's address is logged before the service listens.
  const line = run
    .stderr()
    .split('\n')
    .map((l) => (l === '' ? {} : (JSON.parse(l) as Record<string, unknown>)))
    .find((l) => l['msg'] === 'emulator listening');
  assert.ok(line !== undefined, run.stderr());
  return { run, url, emulator: String(line['httpUrl']) };
}

/** Reads a job's SSE stream until `done` reaches `n`. */
async function progress(url: string, auth: Record<string, string>, id: string, n: number): Promise<void> {
  const reader = (await fetch(`${url}/v1/jobs/${id}/events`, { headers: auth }))
    .body!.pipeThrough(new TextDecoderStream())
    .getReader();
  let seen = '';
  await withDeadline(
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended before any progress');
        seen += value;
        if ([...seen.matchAll(/"done":(\d+)/g)].some((m) => Number(m[1]) >= n)) return;
      }
    })(),
    60_000,
    'progress',
  );
  await reader.cancel();
}

describe('serve --emulator: a stop in the middle of a job', () => {
  it('runs the job on after a restart on the same state file: nothing lost, no verified session sent twice', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-emu-restart-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const state = join(dir, 'state.sqlite');
    const first = await serve(t, state);
    const made = await runCli(
      ['keys', 'create', '--scope', 'jobs:read,jobs:write,audit:read', '--state', state],
      {},
    );
    const { key } = JSON.parse(made.stdout) as { key: string };
    const auth = { authorization: `Bearer ${key}` };
    const sessions = Array.from({ length: N }, (_, i) => `session-${i + 1}`);
    // The engine answers 1,000 resets, then holds its answers: the stop always lands mid-job.
    const hold = (n: number): Promise<Response> =>
      fetch(`${first.emulator}/emulator/faults`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ holdAfterSends: n }),
      });
    assert.equal((await hold(1000)).status, 200);
    const res = await fetch(`${first.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'demo', sessions }),
    });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    await progress(first.url, auth, id, 200);
    first.run.child.kill('SIGTERM');
    // The service took the stop: the engine lets the answers it held go, and the sessions in flight finish.
    await waitForStderr(first.run, (err) => err.includes('stopping: in-flight sessions finish'), 60_000);
    assert.equal((await hold(0)).status, 200);
    assert.equal((await withDeadline(first.run.done, 60_000, 'serve to stop')).code, 0);
    // What the first run reset, as its audit records say.
    const exported = await runCli(['audit', 'export', '--state', state], {});
    assert.equal(exported.code, 0, exported.stderr);
    const resetBefore = exported.stdout
      .trim()
      .split('\n')
      .filter((line) => (JSON.parse(line) as { outcome: string }).outcome === 'reset').length;
    assert.ok(resetBefore >= 200 && resetBefore < N, String(resetBefore));

    const second = await serve(t, state);
    assert.notEqual(second.emulator, first.emulator, 'the emulator came back on another port');
    const events = await withDeadline(
      (await fetch(`${second.url}/v1/jobs/${id}/events`, { headers: auth })).text(),
      120_000,
      'the job to finish',
    );
    const last = JSON.parse(events.trim().split('\n').pop()!.slice(6)) as {
      state: string;
      error: unknown;
      counts: { total: number; reset: number; skipped: number; failed: number };
    };
    assert.equal(last.state, 'succeeded', JSON.stringify(last));
    // The counts are the job's, over both runs.
    const { counts } = last;
    assert.equal(counts.reset, N, JSON.stringify(counts));
    assert.equal(counts.skipped, 0);
    // The new emulator got one SEND for each session the first run had not done, and no other.
    const stats = (await (await fetch(`${second.emulator}/emulator/stats`)).json()) as { sends: number };
    assert.equal(stats.sends, N - resetBefore);
    const outcomes = (
      await (await fetch(`${second.url}/v1/jobs/${id}/outcomes?outcome=reset`, { headers: auth })).text()
    )
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { sessionId: string }).sessionId);
    assert.equal(outcomes.length, N, 'each session reset once over both runs');
    assert.equal(new Set(outcomes).size, N);
    const records = (
      await (await fetch(`${second.url}/v1/audit/records?jobId=${id}`, { headers: auth })).text()
    )
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { sessionId: string; outcome: string; verified: boolean });
    const resets = records.filter((r) => r.outcome === 'reset');
    assert.equal(resets.length, N, 'one audit record of a reset per session');
    assert.equal(new Set(resets.map((r) => r.sessionId)).size, N);
    assert.ok(resets.every((r) => r.verified));
    second.run.child.kill('SIGTERM');
    const exit = await withDeadline(second.run.done, 60_000, 'serve to stop');
    assert.equal(exit.code, 0);
    assert.ok(!exit.stderr.includes(key), 'the API key never appears in a log line');
  });
});

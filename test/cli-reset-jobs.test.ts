/**
 * `cognigy-reset reset` over its jobs and its readers: a killed or interrupted job resumed, one run of a
 * job at a time, an engine or a stdout reader that goes away mid-run, a reader slower than the run. Apart
 * from cli-reset.test.ts (the outcomes and exit codes): the test runner bounds each file's run, and the two
 * together took up to 212 s of its 300 on two busy cores (over 300 with a second busy loop).
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type EmulatorFaults, startEmulator } from '../src/emulator/index.js';
import { CLI, cliEnv, parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { cliScratch, range } from './helpers/cli-scratch.js';
import { withDeadline } from './helpers/ws.js';

const { dir, envFor, idsFile } = cliScratch();

describe('cognigy-reset reset: resumable jobs', () => {
  it('after SIGKILL mid-job, the same command finishes the job: no session lost, none reset twice', async (t) => {
    const emu = await startEmulator({ sessions: 3000, faults: { latencyMs: 2 } });
    t.after(() => emu.close());
    const state = join(dir, 'kill.sqlite');
    const file = idsFile('kill.txt', range(3000));
    const args = ['reset', '--from-file', file, '--job', 'kill-job', '--state', state, '--json'];
    const first = startCli(args, envFor(emu));
    await waitForOutput(first, (out) => out.split('\n').length > 400);
    first.child.kill('SIGKILL');
    const killed = await withDeadline(first.done, 10_000, 'the killed run');
    assert.equal(killed.signal, 'SIGKILL');
    const complete = killed.stdout.slice(0, killed.stdout.lastIndexOf('\n') + 1);
    const firstRun = parseJsonLines(complete).sessions;
    assert.ok(firstRun.length >= 400 && firstRun.length < 3000, `first run reported ${firstRun.length}`);

    const second = await runCli(args, envFor(emu), { timeoutMs: 90_000 });
    assert.equal(second.code, 0, second.stderr);
    const { sessions, summary } = parseJsonLines(second.stdout);
    assert.equal(sessions.length, 3000);
    const skipped = new Set(sessions.filter((s) => s.outcome === 'skipped').map((s) => s.sessionId));
    for (const s of firstRun)
      assert.ok(skipped.has(s.sessionId), `${s.sessionId} was reported in run 1 but not skipped in run 2`);
    assert.equal(summary!.failed, 0);
    for (const id of range(3000)) {
      const session = emu.store.get(id)!;
      assert.equal(session.flowState, 'RESET', id);
      assert.equal(session.resets, 1, `${id} was reset ${session.resets} times`);
    }
  });

  it('stops gracefully on SIGINT (exit 130, summary printed) and the same command resumes the job', async (t) => {
    const emu = await startEmulator({ sessions: 2000, faults: { latencyMs: 2 } });
    t.after(() => emu.close());
    const state = join(dir, 'int.sqlite');
    const file = idsFile('int.txt', range(2000));
    const args = ['reset', '--from-file', file, '--job', 'int-job', '--state', state, '--json'];
    const first = startCli(args, envFor(emu));
    await waitForOutput(first, (out) => out.split('\n').length > 200);
    first.child.kill('SIGINT');
    const stopped = await withDeadline(first.done, 15_000, 'the interrupted run');
    assert.equal(stopped.code, 130);
    const a = parseJsonLines(stopped.stdout);
    assert.equal(a.summary!.interrupted, true);
    assert.equal(a.sessions.length, a.summary!.total);
    assert.ok(
      a.sessions.every((s) => s.outcome === 'reset' && s.verified),
      'an in-flight reset did not finish',
    );

    const second = await runCli(args, envFor(emu), { timeoutMs: 90_000 });
    assert.equal(second.code, 0, second.stderr);
    const b = parseJsonLines(second.stdout);
    assert.equal(b.summary!.skipped, a.sessions.length);
    assert.equal(b.summary!.reset + b.summary!.skipped, 2000);
    for (const id of range(2000)) assert.equal(emu.store.get(id)!.resets, 1, id);
  });

  it('refuses to resume a job with other settings (exit 2)', async (t) => {
    const emu = await startEmulator({ sessions: 10 });
    t.after(() => emu.close());
    const state = join(dir, 'mismatch.sqlite');
    assert.equal((await runCli(['reset', 'session-1', '--job', 'j', '--state', state], envFor(emu))).code, 0);
    const result = await runCli(
      ['reset', 'session-1', '--job', 'j', '--state', state, '--keep-history'],
      envFor(emu),
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /CR_ERR_STATE_JOB_MISMATCH: .*changed: plan/);
  });

  it('refuses a corrupt state file or one from a newer version with exit 2, leaving it untouched', async (t) => {
    const emu = await startEmulator({ sessions: 10 });
    t.after(() => emu.close());
    const corrupt = join(dir, 'corrupt.sqlite');
    writeFileSync(corrupt, 'this is not a database at all, but a user file that must survive');
    const before = readFileSync(corrupt);
    const r1 = await runCli(['reset', 'session-1', '--job', 'j', '--state', corrupt], envFor(emu));
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /CR_ERR_STATE_CORRUPT/);
    assert.deepEqual(readFileSync(corrupt), before);

    const newer = join(dir, 'newer.sqlite');
    assert.equal((await runCli(['reset', 'session-2', '--job', 'j', '--state', newer], envFor(emu))).code, 0);
    const db = new Database(newer);
    db.pragma('user_version = 99');
    db.close();
    const r2 = await runCli(['reset', 'session-3', '--job', 'j', '--state', newer], envFor(emu));
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /CR_ERR_STATE_NEWER/);
    assert.equal(emu.store.get('session-3')!.flowState, 'ACTIVE');

    // A state file whose schema version was lost: damaged, not a file that cannot be opened.
    const unversioned = join(dir, 'unversioned.sqlite');
    assert.equal((await runCli(['reset', 'session-5', '--state', unversioned], envFor(emu))).code, 0);
    const lost = new Database(unversioned);
    lost.pragma('user_version = 0');
    lost.close();
    const r3 = await runCli(['reset', 'session-4', '--job', 'j', '--state', unversioned], envFor(emu));
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /CR_ERR_STATE_CORRUPT: .*holds tables but no schema version/);
    assert.equal(emu.store.get('session-4')!.flowState, 'ACTIVE');
  });
});

/** `reset` of session-1 … session-N from a file, as job `name` with a state file of its own, JSON lines out. */
function jobRun(name: string, count: number, ...extra: string[]): { args: string[]; state: string } {
  const state = join(dir, `${name}.sqlite`);
  const file = idsFile(`${name}.txt`, range(count));
  return { args: ['reset', '--from-file', file, '--job', name, '--json', '--state', state, ...extra], state };
}

/**
 * A 3,000-session job against an emulator that answers in 5 ms (with more `faults` if given), once its
 * first outcome is printed.
 */
async function jobUnderway(name: string, faults: Partial<EmulatorFaults> = {}) {
  const emu = await startEmulator({ sessions: 3000, faults: { latencyMs: 5, ...faults } });
  const { args, state } = jobRun(name, 3000, '--no-progress', '--concurrency', '8');
  const run = startCli(args, envFor(emu));
  try {
    await waitForOutput(run, (out) => out.includes('\n'));
  } catch (err) {
    run.child.kill('SIGKILL');
    await emu.close();
    throw err;
  }
  return { emu, args, state, run };
}

describe('cognigy-reset reset: one run of a job at a time', () => {
  it('refuses a second run of a running job (exit 2), runs another job beside it, and takes over the claim of a run that was killed', async () => {
    // The engine answers the first resets, then holds its answers (applied, unanswered): however fast the
    // machine, the first run is still running when the second comes, and when it is killed.
    const { emu, args, state, run: first } = await jobUnderway('twice', { holdAfterSends: 200 });
    const beside = await startEmulator({ sessions: 2 });
    try {
      const second = await runCli(args, envFor(emu));
      assert.equal(second.code, 2, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(
          `^cognigy-reset: CR_ERR_STATE_JOB_RUNNING: job "twice" is being run by process ${first.child.pid} `,
        ),
      );
      assert.equal(second.stdout, '');
      // Another job, on another engine, shares the state file (and its audit chain) meanwhile.
      const other = await runCli(
        [
          'reset',
          '--from-file',
          idsFile('beside.txt', ['session-1', 'session-2']),
          '--job',
          'beside',
          '--json',
          '--state',
          state,
        ],
        envFor(beside),
      );
      assert.equal(other.code, 0, other.stderr);

      first.child.kill('SIGKILL');
      await withDeadline(first.done, 30_000, 'the killed run');
      const db = new Database(state, { readonly: true });
      const claim = db.prepare("SELECT pid FROM job_runs WHERE job_id = 'twice'").get() as
        { pid: number } | undefined;
      db.close();
      assert.equal(claim?.pid, first.child.pid, 'a killed run leaves its claim behind');

      emu.setFaults({ holdAfterSends: 0 });
      const resumed = await runCli(args, envFor(emu));
      assert.equal(resumed.code, 0, resumed.stderr);
      const { summary } = parseJsonLines(resumed.stdout);
      assert.equal(summary!.total, 3000);
      assert.ok(summary!.skipped > 0, 'the resumed run skips what the killed one finished');
      const after = new Database(state, { readonly: true });
      const left = after.prepare('SELECT count(*) AS n FROM job_runs').get() as { n: number };
      after.close();
      assert.equal(left.n, 0, 'a run that ended gives up its claim');
      const verify = await runCli(['audit', 'verify', '--state', state], {});
      assert.equal(verify.code, 0, verify.stdout);
    } finally {
      await beside.close();
      await emu.close();
    }
  });
});

describe('cognigy-reset reset: whose claim on a job counts', () => {
  it('a live process on this host holds it; a reused pid or another host does not', async () => {
    const emu = await startEmulator({ sessions: 10 });
    const { args, state } = jobRun('claimed', 4, '--no-progress');
    try {
      assert.equal((await runCli(args, envFor(emu))).code, 0);
      const claim = (host: string, start: string | null): void => {
        const db = new Database(state);
        db.prepare(
          "INSERT INTO job_runs (job_id, host, pid, process_start, started_at) VALUES ('claimed', ?, ?, ?, '2026-01-01T00:00:00.000Z')",
        ).run(host, process.pid, start);
        db.close();
      };
      // This test process, as /proc knows it: alive, so the job is refused.
      const stat = readFileSync(`/proc/${process.pid}/stat`, 'latin1');
      const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
      claim(hostname(), start);
      const refused = await runCli(args, envFor(emu));
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr,
        new RegExp(`CR_ERR_STATE_JOB_RUNNING: job "claimed" is being run by process ${process.pid} `),
      );

      // The same pid with another start time: the pid was reused, the claim is stale.
      const db = new Database(state);
      db.prepare("UPDATE job_runs SET process_start = '1' WHERE job_id = 'claimed'").run();
      db.close();
      const reused = await runCli(args, envFor(emu));
      assert.equal(reused.code, 0, reused.stderr);

      // Another host cannot be checked: taken over, with a warning.
      claim('some-other-host', start);
      const elsewhere = await runCli(args, envFor(emu));
      assert.equal(elsewhere.code, 0, elsewhere.stderr);
      assert.match(
        elsewhere.stderr,
        /"heldBy":\{"host":"some-other-host","pid":\d+,"since":"2026-01-01T00:00:00.000Z"\}/,
      );
      assert.match(elsewhere.stderr, /taken over/);
    } finally {
      await emu.close();
    }
  });
});

describe('cognigy-reset reset: an engine that goes away mid-run', () => {
  it('stops after --max-unreachable sessions in a row cannot reach it, exits 1, and the job resumes the rest', async () => {
    const first = await startEmulator({ sessions: 400, faults: { latencyMs: 5 } });
    const port = first.port;
    const { args } = jobRun(
      'engine-gone',
      400,
      '--concurrency',
      '4',
      '--max-attempts',
      '2',
      '--max-unreachable',
      '12',
    );
    const run = startCli(args, envFor(first));
    await waitForOutput(run, (out) => out.split('\n').length > 20);
    await first.close();
    const stopped = await withDeadline(run.done, 30_000, 'the run after the engine went away');
    assert.equal(stopped.code, 1, stopped.stderr);
    assert.match(
      stopped.stderr,
      /CR_ERR_TRANSPORT_CONNECT: the engine could not be reached for 12 sessions in a row, each after its retries/,
    );
    const gone = parseJsonLines(stopped.stdout);
    assert.equal(gone.summary!.fatal.code, 'CR_ERR_TRANSPORT_CONNECT');
    assert.ok(gone.summary!.total < 400, `${gone.summary!.total} sessions were tried`);
    assert.ok((gone.summary!.byCode['CR_ERR_TRANSPORT_CONNECT'] ?? 0) >= 12);

    // The engine is back on the same address: the same command resets what is left.
    const back = await startEmulator({ sessions: 400, port });
    try {
      const resumed = await runCli(args, envFor(back));
      assert.equal(resumed.code, 0, resumed.stderr);
      const again = parseJsonLines(resumed.stdout);
      const resetFirst = new Set(gone.sessions.filter((s) => s.outcome === 'reset').map((s) => s.sessionId));
      const resetNow = again.sessions.filter((s) => s.outcome === 'reset').map((s) => s.sessionId);
      assert.ok(
        resetNow.every((id) => !resetFirst.has(id)),
        'a session reset twice',
      );
      assert.equal(resetFirst.size + resetNow.length, 400);
    } finally {
      await back.close();
    }
  });
});

describe('cognigy-reset reset: a reader that goes away (| head)', () => {
  it('stops taking new sessions, prints the summary on stderr, exits 130, and the job resumes the rest', async () => {
    const { emu, args, state, run } = await jobUnderway('reader-gone');
    try {
      run.child.stdout!.destroy();
      const stopped = await withDeadline(run.done, 30_000, 'the run after its reader went away');
      assert.equal(stopped.code, 130, stopped.stderr);
      assert.match(stopped.stderr, /stopping: stdout was closed; resets in flight finish/);
      assert.match(stopped.stderr, /interrupted: run the same command again to resume job reader-gone/);
      const db = new Database(state, { readonly: true });
      const recorded = (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n;
      db.close();
      assert.ok(recorded > 0 && recorded < 3000, `${recorded} audit records`);

      const resumed = await runCli(args, envFor(emu));
      assert.equal(resumed.code, 0, resumed.stderr);
      const { sessions, summary } = parseJsonLines(resumed.stdout);
      assert.equal(sessions.length, 3000);
      assert.equal(summary!.reset + summary!.skipped, 3000);
      assert.equal(summary!.skipped, recorded);
      const verify = await runCli(['audit', 'verify', '--state', state], {});
      assert.equal(verify.code, 0, verify.stdout);
      assert.equal(JSON.parse(verify.stdout).records, 3000);
    } finally {
      await emu.close();
    }
  });
});

describe('cognigy-reset reset and audit export: a reader slower than the run', () => {
  /**
   * stdout is a Unix socket whose reader reads nothing until told. A socket, like a pipe on macOS, is
   * written asynchronously: a writer that does not wait for its reader queues every line in memory.
   */
  async function slowReader(name: string): Promise<{
    path: string;
    firstChunk: () => Promise<void>;
    readAll: () => Promise<string>;
    close: () => void;
  }> {
    const path = join(dir, `${name}.sock`);
    const server = createServer();
    const sockets: Socket[] = [];
    const chunks: Buffer[] = [];
    const connected = new Promise<Socket>((resolve) =>
      server.on('connection', (socket: Socket) => {
        socket.pause();
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        sockets.push(socket);
        resolve(socket);
      }),
    );
    server.listen(path);
    await once(server, 'listening');
    return {
      path,
      /** Reads until the writer's first output is here, then stops reading again. */
      async firstChunk() {
        const socket = await connected;
        socket.resume();
        await withDeadline(once(socket, 'data'), 30_000, 'the first output');
        socket.pause();
      },
      async readAll() {
        const socket = await connected;
        socket.resume();
        await withDeadline(once(socket, 'end'), 60_000, 'the end of stdout');
        return Buffer.concat(chunks).toString('utf8');
      },
      close() {
        for (const socket of sockets) socket.destroy();
        server.close();
      },
    };
  }

  /** Starts the CLI with stdout on the reader's socket and stderr collected. */
  async function startOnSocket(path: string, args: string[], env: Record<string, string>) {
    const socket = connect(path);
    await once(socket, 'connect');
    const child = spawn(process.execPath, [CLI, ...args], {
      env: cliEnv(env),
      stdio: ['ignore', socket, 'pipe'],
    });
    socket.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const done = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    return { child, stderr: () => stderr, done };
  }

  /**
   * Watches the run while nobody reads its stdout, for `ticks` of its own progress lines once it reported
   * `floor` outcomes: rejects as soon as it reported more than `bound` outcomes or the engine applied more
   * than `bound` resets; resolves with the last count reported. Every wait has a deadline.
   */
  function heldBack(
    run: { child: ChildProcess },
    applied: () => number,
    { floor, bound, ticks }: { floor: number; bound: number; ticks: number },
  ): Promise<number> {
    return withDeadline(
      new Promise<number>((resolve, reject) => {
        let seen = -1;
        run.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
          for (const m of chunk.matchAll(/progress: (\d+)\//g)) {
            const reported = Number(m[1]);
            if (reported > bound || applied() > bound) {
              reject(
                new Error(
                  `${reported} outcomes reported, ${applied()} resets applied while nobody read stdout`,
                ),
              );
              return;
            }
            if (seen < 0 && reported >= floor) seen = 0;
            if (seen >= 0 && ++seen >= ticks) resolve(reported);
          }
        });
      }),
      60_000,
      'the run to be held back by its reader',
    );
  }

  const total = 20_000;
  const auditState = join(dir, 'slow-audit.sqlite');

  for (const audit of [[], ['--no-audit']]) {
    it(`holds back new sessions while the reader does not read ${audit.join(' ') || '(audit log on)'}`, async () => {
      const emu = await startEmulator({ sessions: total });
      const reader = await slowReader(`slow-${audit.length}`);
      let child: ChildProcess | undefined;
      try {
        const run = await startOnSocket(
          reader.path,
          [
            'reset',
            '--from-file',
            idsFile(`slow-${audit.length}.txt`, range(total)),
            '--json',
            '--progress-interval',
            '0.05',
            ...audit,
          ],
          envFor(emu, {
            COGNIGY_RESET_STATE: audit.length === 0 ? auditState : join(dir, 'slow-no-audit.sqlite'),
          }),
        );
        child = run.child;
        // While nobody reads, the run holds at most 4096 outcomes waiting to be reported, plus the lines
        // the socket and the writer hold (a few thousand): never half the sessions, however long it waits.
        // A run that did not wait for its reader resets every session within these ticks.
        const bound = total / 2;
        const reported = await heldBack(run, () => emu.stats().resetsApplied, {
          floor: 500,
          bound,
          ticks: 200,
        });
        assert.ok(reported >= 500 && reported <= bound, `${reported} outcomes reported`);
        const text = await reader.readAll();
        assert.equal(await withDeadline(run.done, 60_000, 'the run'), 0, run.stderr());
        const { sessions, summary } = parseJsonLines(text);
        assert.equal(sessions.length, total);
        assert.equal(summary!.verified, total);
      } finally {
        child?.kill('SIGKILL');
        reader.close();
        await emu.close();
      }
    });
  }

  it('audit export to a slow reader holds no read snapshot while it waits, and delivers every record in order', async () => {
    const reader = await slowReader('slow-export');
    let child: ChildProcess | undefined;
    // A writer that stays connected, as a run would: what it commits sits in the WAL until checkpointed.
    const db = new Database(auditState, { timeout: 5000 });
    db.exec('CREATE TABLE IF NOT EXISTS test_writes (n INTEGER)');
    const write = db.prepare('INSERT INTO test_writes (n) VALUES (1)');
    try {
      write.run();
      const run = await startOnSocket(reader.path, ['audit', 'export', '--state', auditState], {});
      child = run.child;
      // The export is under way and soon waits for its reader. The writer commits again, and its WAL can
      // still be checkpointed and truncated: the waiting export keeps no old snapshot alive.
      await reader.firstChunk();
      write.run();
      const [checkpoint] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      assert.equal(checkpoint!.busy, 0, 'the checkpoint was blocked by a reader');
      const text = await reader.readAll();
      assert.equal(await withDeadline(run.done, 60_000, 'the export'), 0, run.stderr());
      const records = text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as { seq: number });
      assert.deepEqual(
        records.map((r) => r.seq),
        range(total).map((_, i) => i + 1),
      );
      const file = join(dir, 'slow-export.jsonl');
      writeFileSync(file, text);
      const verified = await runCli(['audit', 'verify', '--file', file], {});
      assert.equal(verified.code, 0, verified.stdout);
    } finally {
      db.close();
      child?.kill('SIGKILL');
      reader.close();
    }
  });
});

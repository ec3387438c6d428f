import * as assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type Emulator, type EmulatorFaults, startEmulator } from '../src/emulator/index.js';
import { CLI, cliEnv, parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { withDeadline } from './helpers/ws.js';
import { withFaults } from './helpers/faults.js';

const SECRET = 'tok-RECOGNISABLE-9f8e7d6c5b4a';
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function envFor(emu: Emulator, extra: Record<string, string> = {}): Record<string, string> {
  return {
    COGNIGY_WS_URL: emu.wsUrl,
    COGNIGY_TENANT_ID: 'tenant-1',
    COGNIGY_BOT_ID: 'bot-1',
    COGNIGY_API_TOKEN: 'dev-token',
    // The audit log is on by default: keep each test run's state file in its temp dir.
    COGNIGY_RESET_STATE: join(dir, 'default.sqlite'),
    ...extra,
  };
}

function idsFile(name: string, ids: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${ids.join('\n')}\n`);
  return path;
}

const range = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `session-${i + from}`);

describe('cognigy-reset reset: outcomes and exit codes', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      sessions: 5000,
      tokens: [
        { token: 'dev-token' },
        { token: SECRET },
        { token: 'no-execute', scopes: ['session:manage'] },
      ],
    });
    emu.store.create({ sessionId: 'stuck', stuck: true });
  });
  after(() => emu.close());

  it('resets one session, prints the contract JSON line and a summary, and exits 0', async () => {
    const result = await runCli(['reset', 'session-1', '--json'], envFor(emu));
    assert.equal(result.code, 0, result.stderr);
    const { sessions, summary } = parseJsonLines(result.stdout);
    assert.equal(sessions.length, 1);
    assert.deepEqual(Object.keys(sessions[0]!).sort(), [
      'attempts',
      'error',
      'latencyMs',
      'outcome',
      'sessionId',
      'verified',
    ]);
    assert.deepEqual(
      [
        sessions[0]!.sessionId,
        sessions[0]!.outcome,
        sessions[0]!.verified,
        sessions[0]!.attempts,
        sessions[0]!.error,
      ],
      ['session-1', 'reset', true, 1, null],
    );
    assert.equal(summary!.verified, 1);
    assert.equal(emu.store.get('session-1')!.flowState, 'RESET');
  });

  it("takes the seed's TARGET_SESSION_ID and prints a human summary", async () => {
    const result = await runCli(['reset'], envFor(emu, { TARGET_SESSION_ID: 'session-2' }));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /sessions: 1 {2}reset: 1 {2}verified: 1 {2}failed: 0/);
    assert.match(
      result.stdout,
      /latency p50 [\d.]+ ms {2}p95 [\d.]+ ms {2}p99 [\d.]+ ms {2}throughput \d+ resets\/s/,
    );
  });

  it('exits 1 when a session fails, naming its code, and still resets the others', async () => {
    const result = await runCli(['reset', 'session-3', 'ghost-1', '--json'], envFor(emu));
    assert.equal(result.code, 1);
    const { sessions, summary } = parseJsonLines(result.stdout);
    const ghost = sessions.find((s) => s.sessionId === 'ghost-1')!;
    assert.equal(ghost.outcome, 'failed');
    assert.equal(ghost.error.code, 'CR_ERR_RESET_SESSION_NOT_FOUND');
    assert.deepEqual(summary!.byCode, { CR_ERR_RESET_SESSION_NOT_FOUND: 1 });
  });

  it('fails a never-ending flow with CR_ERR_RESET_VERIFY_ACTIVE after --verify-timeout', async () => {
    const result = await runCli(
      ['reset', 'stuck', 'session-4', '--verify-timeout', '0.5', '--json'],
      envFor(emu),
    );
    assert.equal(result.code, 1);
    const { sessions } = parseJsonLines(result.stdout);
    assert.equal(sessions.find((s) => s.sessionId === 'stuck')!.error.code, 'CR_ERR_RESET_VERIFY_ACTIVE');
    assert.equal(sessions.find((s) => s.sessionId === 'session-4')!.verified, true);
  });

  it('exits 3 on a 401 at the handshake, resetting nothing and never printing the token', async () => {
    const result = await runCli(
      ['reset', 'session-5', 'session-6', '--log-level', 'trace'],
      envFor(emu, { COGNIGY_API_TOKEN: 'tok-UNKNOWN-77aa66bb' }),
    );
    assert.equal(result.code, 3);
    assert.match(result.stderr, /CR_ERR_AUTH_UNAUTHORIZED: .*answered 401 at the handshake/);
    assert.doesNotMatch(result.stdout + result.stderr, /tok-UNKNOWN-77aa66bb/);
    assert.equal(emu.store.get('session-5')!.flowState, 'ACTIVE');
  });

  it('exits 3 on a 403 at the handshake', async () => {
    const result = await runCli(['reset', 'session-7'], envFor(emu, { COGNIGY_API_TOKEN: 'no-execute' }));
    assert.equal(result.code, 3);
    assert.match(result.stderr, /CR_ERR_AUTH_FORBIDDEN: .*answered 403/);
  });

  it('honours a 429 with Retry-After at the handshake and still verifies every session', async () => {
    await withFaults(emu, { handshakeRate: 1 }, async () => {
      const before429 = emu.stats().handshakes['429'] ?? 0;
      const result = await runCli(
        // A burst that needs every connection at once: a fixed rate, not the adaptive one's gentle start.
        [
          'reset',
          ...range(40, 100),
          '--connections',
          '4',
          '--concurrency',
          '8',
          '--json',
          '--rate',
          '1000',
          '--fixed-rate',
        ],
        envFor(emu),
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(parseJsonLines(result.stdout).summary!.verified, 40);
      assert.ok((emu.stats().handshakes['429'] ?? 0) > before429, 'no 429 was provoked');
    });
  });

  it('fails a session whose engine closes with 1011 after retrying it, and resets the others (exit 1)', async () => {
    emu.store.create({ sessionId: 'engine-breaks', engineError: true });
    // A 1011 closes the whole connection: one session at a time, so session-30's requests are never on
    // a connection the broken session takes down (with both in flight, that is a race).
    const result = await runCli(
      ['reset', 'engine-breaks', 'session-30', '--json', '--max-attempts', '2', '--concurrency', '1'],
      envFor(emu),
    );
    assert.equal(result.code, 1);
    const { sessions } = parseJsonLines(result.stdout);
    const broken = sessions.find((s) => s.sessionId === 'engine-breaks')!;
    assert.deepEqual([broken.error.code, broken.attempts], ['CR_ERR_TRANSPORT_ENGINE_ERROR', 2]);
    assert.equal(sessions.find((s) => s.sessionId === 'session-30')!.verified, true);
  });

  it('fails with CR_ERR_RESET_ACK_TIMEOUT when answers miss --ack-timeout on every attempt', async () => {
    await withFaults(emu, { latencyMs: 800 }, async () => {
      const result = await runCli(
        ['reset', 'session-31', '--json', '--ack-timeout', '0.2', '--max-attempts', '2'],
        envFor(emu),
      );
      assert.equal(result.code, 1);
      const [s] = parseJsonLines(result.stdout).sessions;
      assert.deepEqual([s!.error.code, s!.attempts], ['CR_ERR_RESET_ACK_TIMEOUT', 2]);
    });
  });

  it('verifies every session through dropped connections (a drop every 5 frames)', async () => {
    await withFaults(emu, { dropEveryFrames: 5 }, async () => {
      // Each connection answers 4 frames, then its 5th takes down whatever is in flight on it: an attempt
      // succeeds about every other time, so the budget of attempts is raised far above the default
      // (failing 12 in a row is a 1-in-4096 event) while retries stay plentiful.
      const result = await runCli(
        ['reset', ...range(50, 600), '--json', '--concurrency', '4', '--max-attempts', '12'],
        envFor(emu),
      );
      const failed = result.stdout.split('\n').filter((l) => l.includes('"outcome":"failed"'));
      assert.equal(result.code, 0, `${result.stderr}${failed.join('\n')}`);
      const { sessions, summary } = parseJsonLines(result.stdout);
      assert.equal(new Set(sessions.map((s) => s.sessionId)).size, 50);
      assert.equal(summary!.verified, 50);
      assert.ok(summary!.retried > 0);
    });
  });

  it('--dry-run prints each directive, needs no token and opens no connection', async () => {
    const handshakes = JSON.stringify(emu.stats().handshakes);
    const env = envFor(emu);
    delete (env as Record<string, string | undefined>)['COGNIGY_API_TOKEN'];
    const result = await runCli(['reset', 'session-8', 'session-9', '--dry-run', '--keep-history'], env);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout
      .trim()
      .split('\n')
      .slice(0, 2)
      .map((l) => JSON.parse(l));
    const sent = lines
      .map((d) => [d.type, d.sessionId])
      .sort((x, y) => String(x[1]).localeCompare(String(y[1])));
    assert.deepEqual(sent, [
      ['SEND', 'session-8'],
      ['SEND', 'session-9'],
    ]);
    for (const directive of lines) {
      assert.equal(directive.contextWipeDirective.clearHistory, false);
      assert.equal(directive.contextWipeDirective.clearVariables, true);
      assert.equal(directive.maxDurationSec, 900);
    }
    assert.equal(JSON.stringify(emu.stats().handshakes), handshakes);
    assert.equal(emu.store.get('session-8')!.flowState, 'ACTIVE');
  });

  it('exits 2 for an invalid --max-duration, naming the field, and sends nothing', async () => {
    const sends = emu.stats().sends;
    const result = await runCli(['reset', 'session-10', '--max-duration', '59'], envFor(emu));
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /CR_ERR_OPT_INVALID: --max-duration: Expected `maxDurationSec` to be >= 60, got 59/,
    );
    assert.equal(emu.stats().sends, sends);
  });

  it('exits 2 for a --reason too long or not printable (it is copied into every audit record)', async () => {
    const sends = emu.stats().sends;
    for (const reason of ['x'.repeat(501), 'line one\nline two']) {
      const result = await runCli(['reset', 'session-10', '--reason', reason], envFor(emu));
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /Expected a printable text of 1 to 500 characters/);
    }
    assert.equal(emu.stats().sends, sends);
  });

  it('exits 2 for a malformed id in --from-file, naming the line, before anything is sent', async () => {
    const sends = emu.stats().sends;
    const file = idsFile('bad.txt', ['session-11', 'session-12', 'bad\u0007id']);
    const result = await runCli(['reset', '--from-file', file], envFor(emu));
    assert.equal(result.code, 2);
    assert.match(result.stderr, /CR_ERR_OPT_SESSION_ID: .*bad\.txt line 3/);
    assert.equal(emu.stats().sends, sends);
  });

  // A command line the parser refuses carries a stable code like every other error.
  for (const [args, pattern] of [
    [
      ['reset', 'x', '--concurrency', '0'],
      /^cognigy-reset: CR_ERR_OPT_INVALID: option '--concurrency <n>' argument "0" is invalid/,
    ],
    [['reset', 'x', '--rate', 'fast'], /^cognigy-reset: CR_ERR_OPT_INVALID: .*--rate/],
    [['reset', 'x', '--url', 'ws://example.com/ws/v1'], /^cognigy-reset: CR_ERR_OPT_INSECURE_URL: /],
    [
      ['reset', 'x', '--state'],
      /^cognigy-reset: CR_ERR_OPT_MISSING: option '--state <path>' argument missing/,
    ],
    [['reset', 'x', '--frobnicate'], /^cognigy-reset: CR_ERR_CLI_USAGE: unknown option '--frobnicate'/],
    [['frobnicate'], /^cognigy-reset: CR_ERR_CLI_USAGE: unknown command 'frobnicate'/],
    // Job, tenant and bot ids go into every audit record: printable and short, or refused.
    [
      ['reset', 'x', '--job', ''],
      /^cognigy-reset: CR_ERR_OPT_INVALID: option '--job <id>' argument "" is invalid/,
    ],
    [
      ['reset', 'x', '--job', 'j'.repeat(129)],
      /argument "j{40}…" is invalid\. Expected a printable text of 1 to 128 characters/,
    ],
    [
      ['reset', 'x', '--tenant', 't'.repeat(257)],
      /^cognigy-reset: CR_ERR_OPT_INVALID: --tenant: Expected a printable text of 1 to 256/,
    ],
    // A newline in a value is shown escaped: it cannot forge a line on stderr.
    [
      ['reset', 'x', '--job', 'deploy\ncognigy-reset: forged'],
      /^cognigy-reset: CR_ERR_OPT_INVALID: option '--job <id>' argument "deploy\\ncognigy-reset: forged" is invalid/,
    ],
    [['audit'], /^cognigy-reset: CR_ERR_CLI_USAGE: a command is required$/m],
    [[], /^cognigy-reset: CR_ERR_CLI_USAGE: a command is required$/m],
  ] as const) {
    it(`exits 2 for ${JSON.stringify(args.join(' ').slice(0, 60))} with a stable code`, async () => {
      const sends = emu.stats().sends;
      const result = await runCli([...args], envFor(emu));
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, pattern);
      assert.ok(!/^cognigy-reset: forged/m.test(result.stderr), result.stderr);
      assert.equal(result.stdout, '');
      assert.equal(emu.stats().sends, sends);
    });
  }

  it('exits 2 naming the variable when COGNIGY_TENANT_ID, COGNIGY_BOT_ID or COGNIGY_RESET_ACTOR is not printable or too long', async () => {
    const sends = emu.stats().sends;
    for (const [variable, value] of [
      ['COGNIGY_TENANT_ID', 'acme\u001b[31m'],
      ['COGNIGY_BOT_ID', 'acme\u001b[31m'],
      ['COGNIGY_RESET_ACTOR', 'svc-ops\nprincipal:admin'],
      // The actor is refused, not cut short: the record names it exactly or not at all.
      ['COGNIGY_RESET_ACTOR', 'a'.repeat(201)],
    ] as const) {
      const result = await runCli(['reset', 'session-42'], envFor(emu, { [variable]: value }));
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(`^cognigy-reset: CR_ERR_OPT_INVALID: ${variable}: Expected a printable text`),
      );
    }
    assert.equal(emu.stats().sends, sends);
  });

  it('prints its version with --version and exits 0', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const result = await runCli(['--version'], {});
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${pkg.version}\n`);
  });

  it('exits 2 with CR_ERR_AUTH_NO_TOKEN when no token is configured', async () => {
    const env = envFor(emu);
    delete (env as Record<string, string | undefined>)['COGNIGY_API_TOKEN'];
    const result = await runCli(['reset', 'session-13'], env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /CR_ERR_AUTH_NO_TOKEN/);
  });

  it('reads ids from stdin with --from-file -, failing a malformed line alone', async () => {
    const result = await runCli(['reset', '--from-file', '-', '--json'], envFor(emu), {
      stdin: 'session-14\r\n# a comment\n\nsession-15\nbad\u0001id\n',
    });
    assert.equal(result.code, 1);
    const { sessions } = parseJsonLines(result.stdout);
    assert.deepEqual(sessions.map((s) => [s.sessionId, s.outcome]).sort(), [
      ['bad\u0001id', 'failed'],
      ['session-14', 'reset'],
      ['session-15', 'reset'],
    ]);
    assert.equal(sessions.find((s) => s.outcome === 'failed')!.error.code, 'CR_ERR_OPT_SESSION_ID');
  });

  it('fails an over-long stdin line alone (CR_ERR_CLI_LINE_TOO_LONG) and resets the lines around it', async () => {
    const result = await runCli(['reset', '--from-file', '-', '--json'], envFor(emu), {
      stdin: `session-40\n${'x'.repeat(1_100_000)}\nsession-41\n`,
    });
    assert.equal(result.code, 1);
    const { sessions } = parseJsonLines(result.stdout);
    assert.equal(sessions.length, 3);
    assert.equal(sessions.filter((s) => s.outcome === 'reset').length, 2);
    assert.equal(sessions.find((s) => s.outcome === 'failed')!.error.code, 'CR_ERR_CLI_LINE_TOO_LONG');
  });

  it('exits 2 with CR_ERR_STATE_OPEN when the state file cannot be created, and sends nothing', async () => {
    const sends = emu.stats().sends;
    const result = await runCli(
      ['reset', 'session-42', '--state', join(dir, 'missing-dir', 'x.sqlite')],
      envFor(emu),
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /CR_ERR_STATE_OPEN: .*does not exist/);
    assert.equal(emu.stats().sends, sends);
  });

  it('exits 2 naming a directory given as --from-file, or a --state that is not a usable file, and sends nothing', async () => {
    const sends = emu.stats().sends;
    const input = await runCli(['reset', '--from-file', dir], envFor(emu));
    assert.equal(input.code, 2, input.stderr);
    assert.match(input.stderr, /CR_ERR_CLI_INPUT: cannot read --from-file .*: it is a directory/);
    const state = await runCli(['reset', 'session-42', '--state', dir], envFor(emu));
    assert.equal(state.code, 2, state.stderr);
    assert.match(state.stderr, /CR_ERR_STATE_OPEN: cannot use .* as the state file: it is a directory/);
    for (const args of [
      ['audit', 'verify', '--state', dir],
      ['audit', 'export', '--state', dir],
    ]) {
      const audit = await runCli(args, {});
      assert.equal(audit.code, 2, audit.stderr);
      assert.match(audit.stderr, /CR_ERR_STATE_OPEN: .*it is a directory/);
    }
    // Not a regular file, or not one SQLite can open: "cannot use", never "damaged".
    const fifo = join(dir, 'state.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [path, why] of [
      ['/dev/null', /it is not a regular file/],
      [fifo, /it is not a regular file/],
      ['/proc/version', /unable to open database file/],
    ] as const) {
      const odd = await runCli(['reset', 'session-42', '--state', path], envFor(emu));
      assert.equal(odd.code, 2, odd.stderr);
      assert.match(odd.stderr, /^cognigy-reset: CR_ERR_STATE_OPEN: cannot use .* as the state file: /);
      assert.match(odd.stderr, why);
    }
    const offline = await runCli(['audit', 'verify', '--file', join(dir, 'no-such-export.jsonl')], {});
    assert.equal(offline.code, 2, offline.stderr);
    assert.match(offline.stderr, /CR_ERR_CLI_INPUT: cannot read .*no-such-export\.jsonl: ENOENT/);
    assert.equal(emu.stats().sends, sends);
  });

  it('reads the token from --token-file and never shows it, even at log level trace', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${SECRET}\n`);
    const env = envFor(emu);
    delete (env as Record<string, string | undefined>)['COGNIGY_API_TOKEN'];
    const result = await runCli(
      [
        'reset',
        'session-16',
        'ghost-2',
        '--token-file',
        tokenFile,
        '--log-level',
        'trace',
        '--json',
        '--job',
        'secret-job',
        '--state',
        join(dir, 'secret.sqlite'),
      ],
      env,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /"level":30/, 'trace logs were written');
    assert.doesNotMatch(result.stdout + result.stderr, new RegExp(SECRET));
    assert.doesNotMatch(readFileSync(join(dir, 'secret.sqlite')).toString('latin1'), new RegExp(SECRET));
  });

  it('--no-verify reports verified: false and exits 0', async () => {
    const result = await runCli(['reset', 'session-17', '--no-verify', '--json'], envFor(emu));
    assert.equal(result.code, 0);
    assert.equal(parseJsonLines(result.stdout).sessions[0]!.verified, false);
  });

  it('reports progress on stderr every --progress-interval when stderr is not a terminal', async () => {
    await withFaults(emu, { latencyMs: 20 }, async () => {
      const result = await runCli(
        ['reset', ...range(40, 200), '--concurrency', '2', '--progress-interval', '0.2'],
        envFor(emu),
      );
      assert.equal(result.code, 0);
      assert.match(
        result.stderr,
        /progress: \d+\/40 \(\d+%\) done {2}reset \d+ {2}failed 0 {2}skipped 0 {2}\d+\/s {2}ETA/,
      );
    });
  });
});

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

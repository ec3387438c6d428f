/**
 * `cognigy-reset reset`: its outcomes and exit codes against the emulator. Its jobs and readers (resumed,
 * claimed, an engine or a reader that goes away) are in cli-reset-jobs.test.ts: the runner bounds each
 * file's run, and the two in one file came close to that bound on two busy cores.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { cliScratch, range } from './helpers/cli-scratch.js';
import { withFaults } from './helpers/faults.js';

const SECRET = 'tok-RECOGNISABLE-9f8e7d6c5b4a';
const { dir, envFor, idsFile } = cliScratch();

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
    // A name under .localhost is resolved like any other: plain text to it is not loopback.
    [
      ['reset', 'x', '--url', 'ws://engine.localhost:8080/ws/v1'],
      /^cognigy-reset: CR_ERR_OPT_INSECURE_URL: /,
    ],
    // Numbers in decimal only, and no deadline shorter than a round trip.
    [['reset', 'x', '--max-duration', '0x3c'], /^cognigy-reset: CR_ERR_OPT_INVALID: .*--max-duration/],
    [['reset', 'x', '--concurrency', ' 4'], /^cognigy-reset: CR_ERR_OPT_INVALID: .*--concurrency/],
    [['reset', 'x', '--ack-timeout', '0.0000001'], /^cognigy-reset: CR_ERR_OPT_INVALID: .*--ack-timeout/],
    // An option of one value given twice was read as its last: refused.
    [
      ['reset', '--from-file', 'a.txt', '--from-file', 'b.txt'],
      /^cognigy-reset: CR_ERR_OPT_INVALID: option '--from-file <path>' argument "b.txt" is invalid\. It was given twice/,
    ],
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

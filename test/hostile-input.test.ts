/**
 * Input is taken exactly as given, or refused (docs/security.md "Input"): invalid UTF-8 is refused by
 * line, ids are never trimmed or otherwise rewritten, and what the CLI echoes from input or from the
 * engine cannot drive the terminal.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { scriptedApi } from './helpers/http.js';

let dir: string;
let emu: Emulator;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-input-'));
  emu = await startEmulator({ sessions: 50 });
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function file(bytes: Buffer | string): string {
  const path = join(dir, `input-${++files}.txt`);
  writeFileSync(path, bytes);
  return path;
}

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  COGNIGY_WS_URL: emu.wsUrl,
  COGNIGY_TENANT_ID: 'tenant-1',
  COGNIGY_BOT_ID: 'bot-1',
  COGNIGY_API_TOKEN: 'dev-token',
  COGNIGY_RESET_STATE: join(dir, 'state.sqlite'),
  ...extra,
});

/** Raw terminal controls: ESC, the C1 CSI, DEL, a bidi override. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u001b\u009b\u007f\u202e\u0007]/;

const lines = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));

describe('invalid UTF-8 is refused, naming its line, never replaced with U+FFFD', () => {
  const bad: [string, Buffer][] = [
    ['a lone 0xFF', Buffer.from([0x73, 0x2d, 0xff, 0x31])],
    ['a stray continuation byte', Buffer.from([0x73, 0x2d, 0x80])],
    ['an overlong "/"', Buffer.from([0x73, 0xc0, 0xaf])],
    ['a UTF-16 surrogate', Buffer.from([0x73, 0xed, 0xa0, 0x80])],
    ['a Latin-1 "é"', Buffer.from('café', 'latin1')],
  ];
  for (const [what, id] of bad) {
    it(`--from-file: ${what} on line 3 stops the run before anything is sent (exit 2)`, async () => {
      const before = emu.stats().sends;
      const path = file(lines('session-1\nsession-2\n', id, '\nsession-4\n'));
      const result = await runCli(['reset', '--from-file', path, '--json'], env());
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        /CR_ERR_CLI_INPUT_ENCODING: .*line 3 is not valid UTF-8 \(byte 0x[0-9A-F]{2} at character \d+\)/,
      );
      assert.equal(result.stdout, '');
      assert.equal(emu.stats().sends, before, 'nothing was sent');
    });
  }

  it('a sequence cut off by the end of the file is refused too', async () => {
    const result = await runCli(
      ['reset', '--from-file', file(lines('session-1\ns-', Buffer.from([0xe2, 0x82])))],
      env(),
    );
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /CR_ERR_CLI_INPUT_ENCODING: .*line 2 is not valid UTF-8/);
  });

  it('stdin: the bad line fails alone, shown by its bytes; the others are reset and nothing holds U+FFFD', async () => {
    const state = join(dir, 'stdin-utf8.sqlite');
    const stdin = lines('session-5\ns-', Buffer.from([0xff]), '1\nsession-6\n');
    const result = await runCli(['reset', '--from-file', '-', '--json', '--state', state], env(), { stdin });
    assert.equal(result.code, 1, result.stderr);
    const { sessions } = parseJsonLines(result.stdout);
    const byId = new Map(sessions.map((s) => [s['sessionId'] as string, s]));
    assert.equal(byId.get('session-5')?.['outcome'], 'reset');
    assert.equal(byId.get('session-6')?.['outcome'], 'reset');
    const failed = byId.get('s-\\xFF1');
    assert.equal(failed?.['error'].code, 'CR_ERR_CLI_INPUT_ENCODING');
    assert.match(failed?.['error'].message, /stdin line 2 is not valid UTF-8 \(byte 0xFF at character 3\)/);
    const exported = await runCli(['audit', 'export', '--state', state], {});
    assert.ok(!exported.stdout.includes('\uFFFD'), 'no audit record holds a replacement character');
  });

  it('CSV and JSON Lines rows are refused the same way', async () => {
    const csv = file(lines('sessionId,userId\nsession-1,u-1\ns-', Buffer.from([0xc3]), ',u-2\n'));
    const jsonl = file(lines('{"sessionId":"session-1"}\n{"sessionId":"s-', Buffer.from([0xf8]), '"}\n'));
    for (const path of [csv, jsonl]) {
      const result = await runCli(['reset', '--from-file', path], env());
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /CR_ERR_CLI_INPUT_ENCODING: .* line \d is not valid UTF-8/);
    }
  });

  it('an argument or TARGET_SESSION_ID that holds U+FFFD (bytes already lost) is refused', async () => {
    const arg = await runCli(['reset', 'session-1', 's-\uFFFD1'], env());
    assert.equal(arg.code, 2, arg.stderr);
    assert.match(arg.stderr, /CR_ERR_CLI_INPUT_ENCODING: argument 2: session id holds U\+FFFD/);
    const variable = await runCli(['reset'], env({ TARGET_SESSION_ID: '\uFFFDs' }));
    assert.equal(variable.code, 2, variable.stderr);
    assert.match(variable.stderr, /CR_ERR_CLI_INPUT_ENCODING: TARGET_SESSION_ID 1/);
  });
});

describe('no silent rewriting: an id is what the line holds, or the line is refused', () => {
  const spaced: [string, string][] = [
    ['a leading space', ' session-1'],
    ['a trailing space', 'session-1 '],
    ['a trailing tab', 'session-1\t'],
    ['a no-break space', 'session-1\u00a0'],
    ['a byte order mark inside the file', '\uFEFFsession-1'],
  ];
  for (const [what, id] of spaced) {
    it(`--from-file: an id with ${what} on line 2 is refused (exit 2), not trimmed into another id`, async () => {
      const result = await runCli(['reset', '--from-file', file(`session-2\n${id}\n`)], env());
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /CR_ERR_OPT_SESSION_ID: .*line 2: session id /);
    });
  }

  it('a CSV cell with spaces around its id or user id is refused, not trimmed', async () => {
    for (const row of ['session-1 ,u-1', 'session-1, u-1']) {
      const result = await runCli(
        ['reset', '--from-file', file(`sessionId,userId\n${row}\n`), '--dry-run'],
        env(),
      );
      assert.equal(result.code, 2, `${row}: ${result.stderr}`);
      assert.match(result.stderr, /line 2: (session id|userId) .*has spaces around it/);
    }
  });

  /** `reset --from-file` of this text, which must exit 0: each session's id and outcome, sorted. */
  async function resetFile(text: string): Promise<unknown[][]> {
    const result = await runCli(['reset', '--from-file', file(text), '--json'], env());
    assert.equal(result.code, 0, result.stderr);
    return parseJsonLines(result.stdout)
      .sessions.map((s) => [s['sessionId'], s['outcome']])
      .sort();
  }

  it('a CSV of one column headed sessionId: the header is not taken for a session', async () => {
    assert.deepEqual(await resetFile('sessionId\nsession-5\nsession-6\n'), [
      ['session-5', 'reset'],
      ['session-6', 'reset'],
    ]);
  });

  it('a leading byte order mark, CRLF line ends, blank lines and comments are not part of any id', async () => {
    assert.deepEqual(await resetFile('\uFEFFsession-7\r\n\r\n  # a comment\r\n \t\r\nsession-8\r\n'), [
      ['session-7', 'reset'],
      ['session-8', 'reset'],
    ]);
  });
});

describe('safe echoes: input and engine text cannot drive the terminal', () => {
  const hostile = ['bad\u001b[31mred', 'bad\u009b2Jclear', 'bad\u202eevil', 'bad\u007fdel'];

  it('a failed line on stdout, and its log line, escape the control characters of the id it names', async () => {
    const result = await runCli(['reset', '--from-file', '-', '--log-level', 'info'], env(), {
      stdin: `session-9\n${hostile.join('\n')}\n`,
    });
    assert.equal(result.code, 1, result.stderr);
    assert.doesNotMatch(result.stdout, RAW_CONTROL);
    assert.doesNotMatch(result.stderr, RAW_CONTROL);
    assert.match(result.stderr, /"sessionId":"bad\\u009b2Jclear"/, 'the failure is logged');
    assert.match(result.stdout, /failed bad\\u001b\[31mred: CR_ERR_OPT_SESSION_ID/);
    assert.match(result.stdout, /failed bad\\u009b2Jclear/);
  });

  it('--json lines escape C1 controls and bidi overrides too, and still parse to the same id', async () => {
    const result = await runCli(['reset', '--from-file', '-', '--json'], env(), {
      stdin: `${hostile.join('\n')}\n`,
    });
    assert.equal(result.code, 1, result.stderr);
    assert.doesNotMatch(result.stdout, RAW_CONTROL);
    const { sessions } = parseJsonLines(result.stdout);
    assert.deepEqual(sessions.map((s) => s['sessionId']).sort(), [...hostile].sort());
  });

  it("an engine's reason (a REST problem detail) is shown escaped, on stdout and in the audit export", async () => {
    const api = await scriptedApi();
    try {
      api.script = [
        { status: 400, problem: { detail: 'no\u001b]0;pwned\u0007 such\u009b2J flow', code: 1005 } },
        { status: 404, problem: { title: 'gone\u202e', traceId: 't\u001b[1m' } },
      ];
      const state = join(dir, 'rest-echo.sqlite');
      const csv = file('sessionId,userId,flowReferenceId,entrypoint\ns-1,u-1,f,e\ns-2,u-2,f,e\n');
      const result = await runCli(
        [
          'reset',
          '--transport',
          'cognigy-rest',
          '--api-url',
          api.url,
          '--from-file',
          csv,
          '--rate',
          '1000',
          '--concurrency',
          '1',
          '--state',
          state,
        ],
        { COGNIGY_API_KEY: 'k-1234', COGNIGY_RESET_STATE: state },
      );
      assert.equal(result.code, 1, result.stderr);
      assert.doesNotMatch(result.stdout + result.stderr, RAW_CONTROL);
      assert.match(result.stdout, /no\\u001b\]0;pwned\\u0007 such\\u009b2J flow/);
      const exported = await runCli(['audit', 'export', '--state', state], {});
      assert.doesNotMatch(exported.stdout, RAW_CONTROL);
    } finally {
      api.close();
    }
  });
});

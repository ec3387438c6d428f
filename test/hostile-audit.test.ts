/**
 * Verification is sound against hostile files: gaps it cannot prove were filtered fail it, every field
 * is covered by the hash, bad lines get coded errors, and `audit verify`/`audit export` change no byte
 * of the file they read, even a read-only copy, whatever its schema or damage.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { CLI, type CliResult, cliEnv, collectRun, runCli } from './helpers/cli.js';

const TOKEN = 'tok-HOSTILE-AUDIT-9f8e';
let dir: string;
let emu: Emulator;
/** A state file with 12 records, written by a finished run (WAL mode, its -wal gone). */
let state: string;
/** Its whole export, one line a record. */
let lines: string[];
let headHash: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-hostile-audit-'));
  // A child running as another user (below) must be able to reach the files under it.
  chmodSync(dir, 0o755);
  emu = await startEmulator({ sessions: 50, tokens: [{ token: TOKEN }] });
  state = join(dir, 'state.sqlite');
  const ids = Array.from({ length: 12 }, (_, i) => `session-${i + 1}`);
  const run = await runCli(['reset', ...ids, '--state', state, '--concurrency', '1'], {
    COGNIGY_WS_URL: emu.wsUrl,
    COGNIGY_TENANT_ID: 't',
    COGNIGY_BOT_ID: 'b',
    COGNIGY_API_TOKEN: TOKEN,
  });
  assert.equal(run.code, 0, run.stderr);
  lines = (await runCli(['audit', 'export', '--state', state], {})).stdout.trimEnd().split('\n');
  assert.equal(lines.length, 12);
  headHash = JSON.parse((await runCli(['audit', 'verify', '--state', state], {})).stdout).headHash;
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${content.join('\n')}\n`);
  return path;
}

const verifyFile = (path: string, ...more: string[]): Promise<CliResult> =>
  runCli(['audit', 'verify', '--file', path, ...more], {});

describe('gaps in an export', () => {
  it('fails records 4–6 deleted, with or without the kept --anchor', async () => {
    const path = file('gap-middle.jsonl', [...lines.slice(0, 3), ...lines.slice(6)]);
    for (const args of [[], ['--anchor', headHash]]) {
      const result = await verifyFile(path, ...args);
      assert.equal(result.code, 1, result.stdout);
      assert.match(JSON.parse(result.stdout).firstBad.problem, /sequence jumps from 3 to 7/);
    }
  });

  it('fails the first records deleted (the file starts at seq 4)', async () => {
    const result = await verifyFile(file('gap-head.jsonl', lines.slice(3)), '--anchor', headHash);
    assert.equal(result.code, 1, result.stdout);
    assert.equal(JSON.parse(result.stdout).firstBad.seq, 4);
  });

  it('accepts gaps only with --allow-gaps, and then says the file is not complete', async () => {
    const path = file('gap-allowed.jsonl', [...lines.slice(0, 3), ...lines.slice(6)]);
    const result = await verifyFile(path, '--allow-gaps', '--anchor', headHash);
    assert.equal(result.code, 0, result.stdout);
    const verdict = JSON.parse(result.stdout);
    assert.deepEqual([verdict.ok, verdict.complete, verdict.gaps, verdict.records], [true, false, 1, 9]);
    const whole = JSON.parse((await verifyFile(file('whole.jsonl', lines), '--allow-gaps')).stdout);
    assert.deepEqual([whole.complete, whole.gaps], [true, 0]);
  });
});

describe('every field is covered by the hash', () => {
  const withField = (line: string, key: string, value: unknown): string =>
    `${line.slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value)}}`;
  for (const [name, edit] of [
    ['an added field', (l: string) => withField(l, 'approvedBy', 'mallory')],
    ['an added __proto__ field', (l: string) => withField(l, '__proto__', { outcome: 'reset' })],
    ['a field removed', (l: string) => l.replace(/,"requestId":(null|"[^"]*")/, '')],
    ['a field of the wrong type', (l: string) => l.replace(/"attempts":(\d+)/, '"attempts":"$1"')],
    // JSON.parse keeps the last of two keys, grep and other readers the first: "failed" here.
    [
      'a field given twice',
      (l: string) => l.replace(/"outcome":"reset"/, '"outcome":"failed","outcome":"reset"'),
    ],
    [
      'a field given twice, escaped',
      (l: string) => l.replace(/"outcome":"reset"/, '"\\u006futcome":"failed","outcome":"reset"'),
    ],
  ] as const) {
    it(`fails ${name}, naming the line with a coded error`, async () => {
      const edited = [...lines];
      edited[4] = edit(edited[4]!);
      assert.notEqual(edited[4], lines[4]);
      const result = await verifyFile(file(`field-${name.replace(/\W+/g, '-')}.jsonl`, edited));
      assert.equal(result.code, 1, result.stdout);
      assert.deepEqual(
        [JSON.parse(result.stdout).line, JSON.parse(result.stdout).code],
        [5, 'CR_ERR_AUDIT_BAD_LINE'],
      );
    });
  }
});

describe('bad lines get clean, coded errors', () => {
  for (const bad of ['null', '[]', '42', '"a string"', 'true', '{"seq":1}', '{not json']) {
    it(`a line ${bad}`, async () => {
      const result = await verifyFile(file('bad.jsonl', [lines[0]!, bad, ...lines.slice(1)]));
      assert.equal(result.code, 1, result.stderr);
      assert.deepEqual(
        [JSON.parse(result.stdout).line, JSON.parse(result.stdout).code],
        [2, 'CR_ERR_AUDIT_BAD_LINE'],
      );
      assert.match(result.stderr, /^cognigy-reset: CR_ERR_AUDIT_BAD_LINE: /);
      assert.doesNotMatch(result.stderr, /TypeError|\n\s+at /);
    });
  }
});

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/**
 * The CLI as a user without write permission anywhere near the file: root ignores file modes, so a
 * test running as root runs it as `nobody`.
 */
function runAsReader(args: string[]): Promise<CliResult> {
  const asRoot = process.getuid?.() === 0;
  const child = spawn(process.execPath, [CLI, ...args], {
    env: cliEnv({}),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  return collectRun(child, 60_000, 'audit command');
}

describe('audit verify and audit export are read-only', () => {
  /** A copy of the state file, mode 444, in a directory of mode 555. */
  function readOnlyCopy(name: string, source = state): string {
    const copyDir = join(dir, name);
    mkdirSync(copyDir);
    const path = join(copyDir, 'state.sqlite');
    copyFileSync(source, path);
    chmodSync(path, 0o444);
    chmodSync(copyDir, 0o555);
    return path;
  }

  it('verify and export work on a read-only copy of a WAL-mode file and change no byte, create no file', async () => {
    const path = readOnlyCopy('ro-wal');
    // WAL mode, read from the header (bytes 18 and 19): opening it to ask would make a -wal and -shm.
    assert.deepEqual([...readFileSync(path).subarray(18, 20)], [2, 2]);
    const before = sha(path);
    const listing = readdirSync(join(dir, 'ro-wal'));
    assert.deepEqual(listing, ['state.sqlite']);
    const verify = await runAsReader(['audit', 'verify', '--state', path]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(JSON.parse(verify.stdout).records, 12);
    const exported = await runAsReader(['audit', 'export', '--state', path, '--format', 'csv']);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout.trimEnd().split('\n').length, 13);
    assert.equal(sha(path), before);
    assert.deepEqual(readdirSync(join(dir, 'ro-wal')), listing);
  });

  it('verify changes no byte of a writable file either: no journal-mode switch, no -wal or -shm left', async () => {
    const path = join(dir, 'rollback.sqlite');
    copyFileSync(state, path);
    // A file in rollback-journal mode: verify used to switch it to WAL.
    const db = new Database(path);
    db.pragma('journal_mode = DELETE');
    db.close();
    const before = sha(path);
    for (const args of [['verify'], ['export']]) {
      const result = await runCli(['audit', ...args, '--state', path], {});
      assert.equal(result.code, 0, result.stderr);
    }
    assert.equal(sha(path), before);
    assert.equal(existsSync(`${path}-wal`) || existsSync(`${path}-shm`), false);
  });

  it('reads an older schema without upgrading the file (a read-only copy of a version-4 file)', async () => {
    // A file that claims an older version but does not have its tables is damaged, and said so.
    const bogus = join(dir, 'v4-bogus.sqlite');
    copyFileSync(state, bogus);
    const fake = new Database(bogus);
    fake.pragma('user_version = 4');
    fake.close();
    const refused = await runCli(['audit', 'verify', '--state', bogus], {});
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /^cognigy-reset: CR_ERR_STATE_CORRUPT: .*v4-bogus\.sqlite has schema version 4/,
    );
    assert.doesNotMatch(refused.stderr, /no such column|cognigy-reset-read-/);

    const older = join(dir, 'v4-source.sqlite');
    copyFileSync(state, older);
    const db = new Database(older);
    // What version 4 had: no job_runs' successor changes, and the outbox with its URL column.
    db.exec(`DROP TABLE outbox;
      CREATE TABLE outbox (id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, url TEXT NOT NULL,
        payload TEXT NOT NULL, created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, delivered_at TEXT) STRICT;
      CREATE INDEX outbox_pending ON outbox (delivered_at, id);`);
    db.pragma('user_version = 4');
    db.pragma('journal_mode = DELETE');
    db.close();
    const path = readOnlyCopy('ro-v4', older);
    const before = sha(path);
    const verify = await runAsReader(['audit', 'verify', '--state', path]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(JSON.parse(verify.stdout).records, 12);
    assert.equal(sha(path), before);
  });
});

describe('a damaged or foreign state file gets a coded error, not SQL text', () => {
  const damaged: [string, (db: Database.Database) => void, RegExp][] = [
    ['its audit table dropped', (db) => db.exec('DROP TABLE audit_records'), /CR_ERR_STATE_CORRUPT/],
    [
      'a column renamed',
      (db) => db.exec('ALTER TABLE audit_records RENAME COLUMN record TO body'),
      /CR_ERR_STATE_CORRUPT/,
    ],
    ['a newer schema', (db) => db.pragma('user_version = 99'), /CR_ERR_STATE_NEWER/],
    ['another application’s id', (db) => db.pragma('application_id = 7'), /CR_ERR_STATE_CORRUPT/],
  ];
  for (const [name, damage, expected] of damaged) {
    it(`${name}: verify and export exit 2 with ${expected.source}`, async () => {
      const path = join(dir, `damaged-${name.replace(/\W+/g, '-')}.sqlite`);
      copyFileSync(state, path);
      const db = new Database(path);
      damage(db);
      db.close();
      for (const command of ['verify', 'export']) {
        const result = await runCli(['audit', command, '--state', path], {});
        assert.equal(result.code, 2, `${command}: ${result.stderr}`);
        assert.match(result.stderr, new RegExp(`^cognigy-reset: ${expected.source}: `));
        assert.doesNotMatch(result.stderr, /no such|SELECT|SqliteError|CR_ERR_INTERNAL/);
      }
    });
  }

  it('a file that is not SQLite, and an empty one', async () => {
    for (const [name, content] of [
      ['garbage.sqlite', 'not a database at all, just text\n'.repeat(10)],
      ['empty.sqlite', ''],
    ] as const) {
      const path = join(dir, name);
      writeFileSync(path, content);
      const result = await runCli(['audit', 'verify', '--state', path], {});
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^cognigy-reset: CR_ERR_STATE_CORRUPT: /);
      assert.equal(readFileSync(path, 'utf8'), content);
    }
  });
});

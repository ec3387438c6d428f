import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { createResetter } from '../src/reset/resetter.js';
import { CHANNELS, type DoneMessage } from '../src/reset/events.js';
import { NEW_FILE_PAGE_SIZE, openStateFile } from '../src/store/sqlite/state-file.js';
import { localStateWriter } from '../src/store/sqlite/state-writer.js';
import { verifyAudit } from '../src/store/sqlite/audit-read.js';
import { canonical, GENESIS_HASH, parseCanonical, recordHash } from '../src/audit/chain.js';
import type { AuditContext } from '../src/audit/record.js';
import { blankOutcome } from '../src/reset/outcome.js';
import { parseJsonLines, runCli, startCli, waitForOutput } from './helpers/cli.js';
import { withDeadline } from './helpers/ws.js';
import { withFaults } from './helpers/faults.js';

const SECRET = 'tok-AUDIT-SECRET-1a2b3c4d';
let dir: string;
let emu: Emulator;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-audit-'));
  emu = await startEmulator({ sessions: 8000, tokens: [{ token: SECRET }] });
  emu.store.create({ sessionId: 'refuses', rejects: true });
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    COGNIGY_WS_URL: emu.wsUrl,
    COGNIGY_TENANT_ID: 'tenant-a',
    COGNIGY_BOT_ID: 'bot-a',
    COGNIGY_API_TOKEN: SECRET,
    ...extra,
  };
}

const range = (n: number, from: number): string[] =>
  Array.from({ length: n }, (_, i) => `session-${i + from}`);

function exportJsonl(state: string, ...args: string[]) {
  return runCli(['audit', 'export', '--state', state, ...args], {});
}

/** The audit context of the tests that drive the writer from code. */
const AUDIT_CONTEXT: AuditContext = {
  actor: 'test',
  reason: null,
  jobId: null,
  tenant: 't',
  botId: 'b',
  transport: 'runtime-ws',
  notCleared: [],
};

describe('audit log', () => {
  let state: string;
  before(async () => {
    state = join(dir, 'audit.sqlite');
    const result = await runCli(
      [
        'reset',
        ...range(8, 1),
        'ghost-1',
        'refuses',
        '--json',
        '--state',
        state,
        '--job',
        'deploy-42',
        '--reason',
        'broken flow after deploy 42',
      ],
      env({ COGNIGY_RESET_ACTOR: 'svc-ops-bot' }),
    );
    assert.equal(result.code, 1, result.stderr);
  });

  it('writes one record per outcome with actor, reason, job, tenant, bot, transport, layers, outcome and directive hash', async () => {
    const result = await exportJsonl(state);
    assert.equal(result.code, 0, result.stderr);
    const records = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(records.length, 10);
    assert.deepEqual(
      records.map((r) => r.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    const ok = records.find((r) => r.sessionId === 'session-1')!;
    assert.equal(ok.actor, 'principal:svc-ops-bot');
    assert.equal(ok.reason, 'broken flow after deploy 42');
    assert.deepEqual(
      [ok.jobId, ok.tenant, ok.botId, ok.transport],
      ['deploy-42', 'tenant-a', 'bot-a', 'runtime-ws'],
    );
    assert.deepEqual(ok.cleared, ['flow', 'dialog', 'engine', 'variables', 'history', 'nlu']);
    assert.deepEqual(ok.notCleared, []);
    assert.deepEqual([ok.outcome, ok.verified, ok.errorCode, ok.attempts], ['reset', true, null, 1]);
    assert.match(ok.requestId, /^[0-9a-f]{8}-/);
    assert.match(ok.directiveHash, /^[0-9a-f]{64}$/);
    assert.match(ok.hash, /^[0-9a-f]{64}$/);
    const ghost = records.find((r) => r.sessionId === 'ghost-1')!;
    assert.deepEqual([ghost.outcome, ghost.errorCode], ['failed', 'CR_ERR_RESET_SESSION_NOT_FOUND']);
    assert.equal(records.find((r) => r.sessionId === 'refuses')!.errorCode, 'CR_ERR_RESET_REJECTED');
    assert.doesNotMatch(readFileSync(state).toString('latin1'), new RegExp(SECRET));
  });

  it('records the OS user as the actor when no service principal is named', async () => {
    const other = join(dir, 'actor.sqlite');
    assert.equal((await runCli(['reset', 'session-20', '--state', other], env())).code, 0);
    const [record] = (await exportJsonl(other)).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(record.actor, `os:${userInfo().username}`);
  });

  it('audit verify exits 0 with the record count when the chain is intact', async () => {
    const result = await runCli(['audit', 'verify', '--state', state], {});
    assert.equal(result.code, 0);
    const body = JSON.parse(result.stdout);
    assert.equal(body.ok, true);
    assert.equal(body.records, 10);
    assert.equal(body.headSeq, 10);
  });

  const tampering: [string, string, number, RegExp][] = [
    [
      'an edited field',
      `UPDATE audit_records SET record = replace(record, '"failed",false,"CR_ERR_RESET_SESSION_NOT_FOUND"', '"reset",true,null') WHERE json_extract(record, '$[8]') = 'ghost-1'`,
      0,
      /altered/,
    ],
    ['a deleted row', 'DELETE FROM audit_records WHERE seq = 4', 5, /sequence jumps from 3 to 5/],
    [
      'two swapped rows',
      `UPDATE audit_records SET seq = -1 WHERE seq = 3; UPDATE audit_records SET seq = 3 WHERE seq = 4; UPDATE audit_records SET seq = 4 WHERE seq = -1;`,
      3,
      /prevHash|altered/,
    ],
    ['a truncated log', 'DELETE FROM audit_records WHERE seq > 6', 7, /truncated/],
    [
      'a record overwritten with garbage',
      "UPDATE audit_records SET record = 'garbage' WHERE seq = 2",
      2,
      /not readable/,
    ],
  ];
  for (const [what, sql, firstBad, pattern] of tampering) {
    it(`audit verify exits 1 and names the first bad record after ${what}`, async () => {
      const copy = join(dir, `tampered-${what.replace(/\W+/g, '-')}.sqlite`);
      copyFileSync(state, copy);
      const db = new Database(copy);
      db.exec(sql);
      const expected =
        firstBad === 0
          ? (
              db
                .prepare("SELECT seq FROM audit_records WHERE json_extract(record, '$[8]') = 'ghost-1'")
                .get() as { seq: number }
            ).seq
          : firstBad;
      db.close();
      const result = await runCli(['audit', 'verify', '--state', copy], {});
      assert.equal(result.code, 1, result.stdout);
      const body = JSON.parse(result.stdout);
      assert.equal(body.ok, false);
      assert.equal(body.firstBad.seq, expected);
      assert.match(body.firstBad.problem, pattern);
    });
  }

  it('exports filtered by session, job, outcome and time, as JSONL or CSV', async () => {
    const bySession = await exportJsonl(state, '--session', 'session-3');
    assert.deepEqual(
      bySession.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).sessionId),
      ['session-3'],
    );
    const failed = await exportJsonl(state, '--outcome', 'failed');
    assert.deepEqual(
      failed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).sessionId)
        .sort(),
      ['ghost-1', 'refuses'],
    );
    assert.equal((await exportJsonl(state, '--job', 'other')).stdout, '');
    assert.equal((await exportJsonl(state, '--until', '2000-01-01T00:00:00Z')).stdout, '');
    assert.equal((await exportJsonl(state, '--since', '2000-01-01')).stdout.trim().split('\n').length, 10);
    const csv = await exportJsonl(state, '--format', 'csv', '--outcome', 'reset');
    const lines = csv.stdout.trim().split('\n');
    assert.equal(
      lines[0],
      'seq,ts,actor,reason,jobId,tenant,botId,sessionId,transport,cleared,notCleared,outcome,verified,errorCode,attempts,latencyMs,requestId,directiveHash,prevHash,hash',
    );
    assert.equal(lines.length, 9);
    assert.match(lines[1]!, /,flow dialog engine variables history nlu,,reset,true,,1,/);
    // Bad times and an empty window are refused (exit 2), not answered with an empty export.
    for (const args of [
      ['--since', 'yesterday-ish'],
      // No time zone: which zone it meant depends on the machine.
      ['--since', '2026-11-25T08:00:00'],
      ['--until', '2026-02-30'],
      ['--since', '2026-11-25', '--until', '2026-11-25T00:00:00Z'],
      ['--since', '2026-11-26', '--until', '2026-11-25'],
    ]) {
      const bad = await exportJsonl(state, ...args);
      assert.equal(bad.code, 2, args.join(' '));
      assert.equal(bad.stdout, '');
      assert.match(bad.stderr, /CR_ERR_OPT_INVALID/);
    }
    // A time with an offset means that instant: every record is before a far-future one.
    const zoned = await exportJsonl(
      state,
      '--since',
      '1999-12-31T23:00:00-01:00',
      '--until',
      '2999-01-01T05:30:00+05:30',
    );
    assert.equal(zoned.stdout.trim().split('\n').length, 10);
  });

  it('verifies an exported JSONL offline, whole or filtered, and catches an edited line', async () => {
    const whole = join(dir, 'export.jsonl');
    writeFileSync(whole, (await exportJsonl(state)).stdout);
    const wholeCheck = await runCli(['audit', 'verify', '--file', whole], {});
    assert.equal(wholeCheck.code, 0);
    // A whole export ends with the log's head: the auditor compares it with the state file's headHash.
    const head = JSON.parse((await runCli(['audit', 'verify', '--state', state], {})).stdout) as {
      headSeq: number;
      headHash: string;
    };
    const fileCheck = JSON.parse(wholeCheck.stdout) as { lastSeq: number; lastHash: string };
    assert.deepEqual([fileCheck.lastSeq, fileCheck.lastHash], [head.headSeq, head.headHash]);
    // Cut short, it still verifies on its own, and says where it ends.
    const cut = join(dir, 'cut.jsonl');
    writeFileSync(cut, readFileSync(whole, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    const cutCheck = JSON.parse((await runCli(['audit', 'verify', '--file', cut], {})).stdout) as {
      lastSeq: number;
    };
    assert.equal(cutCheck.lastSeq, 2);
    assert.notEqual(head.headSeq, 2, 'the fixture log is too short to cut');
    // An export with a record left out (by a filter, or deleted): nothing in it proves which, so it is
    // accepted only when asked to. The second record goes, so the gap does not depend on the order in
    // which the fixture's outcomes were recorded.
    const filtered = join(dir, 'filtered.jsonl');
    const all = readFileSync(whole, 'utf8').trimEnd().split('\n');
    writeFileSync(filtered, [all[0], ...all.slice(2)].join('\n') + '\n');
    assert.equal((await runCli(['audit', 'verify', '--file', filtered], {})).code, 1);
    const ok = await runCli(['audit', 'verify', '--file', filtered, '--allow-gaps'], {});
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(JSON.parse(ok.stdout).complete, false);
    const edited = join(dir, 'edited.jsonl');
    writeFileSync(edited, readFileSync(whole, 'utf8').replace('"outcome":"failed"', '"outcome":"reset"'));
    const result = await runCli(['audit', 'verify', '--file', edited], {});
    assert.equal(result.code, 1);
    assert.match(JSON.parse(result.stdout).firstBad.problem, /altered/);
  });

  it('hashes the directive exactly as it was sent on the wire', async () => {
    const path = join(dir, 'hash.sqlite');
    const db = openStateFile(path);
    const writer = localStateWriter(db, path);
    const resetter = createResetter({ url: emu.wsUrl, tenant: 't', botId: 'b', token: SECRET });
    const sent = new Map<string, string>();
    const listener = (m: unknown): void => {
      const { outcome, directiveText } = m as DoneMessage;
      if (directiveText !== undefined) sent.set(outcome.sessionId, directiveText);
    };
    subscribe(CHANNELS.done.name, listener);
    await resetter.run(
      [
        { sessionId: 'session-40', index: 0 },
        { sessionId: 'session-41', index: 1 },
      ],
      {
        persist: (outcome) => writer.append({ outcome, audit: AUDIT_CONTEXT }),
      },
    );
    unsubscribe(CHANNELS.done.name, listener);
    await resetter.close();
    await writer.close();
    const rows = db
      .prepare(
        "SELECT json_extract(record, '$[8]') AS session_id, json_extract(record, '$[18]') AS directive_hash FROM audit_records",
      )
      .all() as {
      session_id: string;
      directive_hash: string;
    }[];
    db.close();
    assert.equal(rows.length, 2);
    for (const row of rows) {
      const text = sent.get(row.session_id)!;
      assert.match(text, /^\{"type":"SEND","sessionId":"session-4[01]"/);
      assert.equal(row.directive_hash, createHash('sha256').update(text).digest('hex'));
    }
  });
});

describe('audit verify --anchor: a head hash kept from an earlier verify', () => {
  it('passes while the log still holds that record, and catches a log rewritten with fresh hashes', async () => {
    const state = join(dir, 'anchor.sqlite');
    const run = (...ids: string[]) => runCli(['reset', ...ids, '--state', state], env());
    assert.equal((await run('session-7001', 'session-7002', 'session-7003')).code, 0);
    const first = JSON.parse((await runCli(['audit', 'verify', '--state', state], {})).stdout);
    const kept = first.headHash as string;
    assert.equal((await run('session-7004', 'session-7005')).code, 0);

    const later = await runCli(['audit', 'verify', '--state', state, '--anchor', kept.toUpperCase()], {});
    assert.equal(later.code, 0, later.stdout);
    assert.deepEqual([JSON.parse(later.stdout).records, JSON.parse(later.stdout).anchorSeq], [5, 3]);
    const file = join(dir, 'anchor.jsonl');
    writeFileSync(file, (await exportJsonl(state)).stdout);
    const offline = await runCli(['audit', 'verify', '--file', file, '--anchor', kept], {});
    assert.equal(offline.code, 0, offline.stdout);
    assert.equal(JSON.parse(offline.stdout).anchorSeq, 3);

    // Someone with write access edits record 2 and recomputes every hash after it, and the head: the
    // chain alone is consistent again, but the kept anchor is gone.
    const db = new Database(state);
    const rows = db.prepare('SELECT seq, record, hash FROM audit_records ORDER BY seq').all() as {
      seq: number;
      record: string;
      hash: string;
    }[];
    let prevHash = GENESIS_HASH;
    const update = db.prepare('UPDATE audit_records SET record = ?, hash = ? WHERE seq = ?');
    for (const row of rows) {
      const fields = { ...parseCanonical(row.seq, row.record, row.hash)!, prevHash };
      if (row.seq === 2) fields.reason = 'nothing to see here';
      const hash = recordHash(fields);
      update.run(canonical(fields), hash, row.seq);
      prevHash = hash;
    }
    db.prepare('UPDATE audit_head SET hash = ? WHERE id = 1').run(prevHash);
    db.close();
    assert.equal(
      (await runCli(['audit', 'verify', '--state', state], {})).code,
      0,
      'the rewrite is self-consistent',
    );
    const caught = await runCli(['audit', 'verify', '--state', state, '--anchor', kept], {});
    assert.equal(caught.code, 1, caught.stdout);
    assert.match(
      JSON.parse(caught.stdout).firstBad.problem,
      /^no record has the anchor hash [0-9a-f]{64}: the log was rewritten/,
    );
    writeFileSync(file, (await exportJsonl(state)).stdout);
    assert.equal((await runCli(['audit', 'verify', '--file', file, '--anchor', kept], {})).code, 1);

    const malformed = await runCli(['audit', 'verify', '--state', state, '--anchor', 'abc123'], {});
    assert.equal(malformed.code, 2, malformed.stderr);
    assert.match(
      malformed.stderr,
      /^cognigy-reset: CR_ERR_OPT_INVALID: option '--anchor <hash>' .*64 hex digits/,
    );
  });
});

describe('audit verify while a run commits', () => {
  it('reads the head and the records from one snapshot: a commit in between is no false alarm', () => {
    const path = join(dir, 'snapshot.sqlite');
    const db = openStateFile(path);
    const writer = localStateWriter(db, path);
    const commit = (sessionId: string): void => {
      void writer.append({ outcome: blankOutcome(sessionId, 'reset', ['flow'], []), audit: AUDIT_CONTEXT });
      writer.flush();
    };
    commit('snap-1');
    // The verifier's own connection; another run commits right after it read the head anchor.
    const reader = openStateFile(path);
    const prepare = reader.prepare.bind(reader);
    let committedMeanwhile = false;
    reader.prepare = ((sql: string) => {
      const statement = prepare(sql);
      if (!sql.includes('FROM audit_head')) return statement;
      const get = statement.get.bind(statement);
      statement.get = (...args: unknown[]) => {
        const row = get(...args);
        commit('snap-2');
        commit('snap-3');
        committedMeanwhile = true;
        return row;
      };
      return statement;
    }) as typeof reader.prepare;
    const during = verifyAudit(reader);
    reader.close();
    assert.ok(committedMeanwhile);
    assert.equal(during.ok, true, JSON.stringify(during.problem));
    assert.equal(during.records, 1);
    const after = verifyAudit(db);
    db.close();
    assert.equal(after.ok, true, JSON.stringify(after.problem));
    assert.equal(after.records, 3);
  });
});

describe('audit log written by schema version 2', () => {
  /** A state file as version 2 left it: one column per field, each hash over the JSON array of the fields. */
  function version2File(path: string, tamperSeq?: number): void {
    const db = new Database(path);
    db.exec(`CREATE TABLE audit_log (
      seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT, job_id TEXT,
      tenant TEXT NOT NULL, bot_id TEXT NOT NULL, session_id TEXT NOT NULL, transport TEXT NOT NULL,
      cleared TEXT NOT NULL, not_cleared TEXT NOT NULL, outcome TEXT NOT NULL, verified INTEGER NOT NULL,
      error_code TEXT, attempts INTEGER NOT NULL, latency_ms REAL NOT NULL, request_id TEXT,
      directive_hash TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL) STRICT;
      CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL) STRICT;
      CREATE TABLE outbox (id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, url TEXT NOT NULL,
        payload TEXT NOT NULL, created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, delivered_at TEXT) STRICT;`);
    const insert = db.prepare(
      'INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    let prev = '0'.repeat(64);
    for (let seq = 1; seq <= 3; seq++) {
      const cleared = ['flow', 'variables'];
      const failed = seq === 2;
      const fields = [
        1,
        seq,
        `2026-01-0${seq}T10:00:00.000Z`,
        'os:alice',
        'deploy 41 broke flows',
        'job-v2',
        't1',
        'b1',
        `old-${seq}`,
        'runtime-ws',
        cleared,
        [],
        failed ? 'failed' : 'reset',
        !failed,
        failed ? 'CR_ERR_RESET_SESSION_NOT_FOUND' : null,
        seq,
        2.5 * seq,
        `req-${seq}`,
        'ab'.repeat(32),
        prev,
      ];
      const hash = createHash('sha256').update(JSON.stringify(fields)).digest('hex');
      const row = [...fields.slice(1)];
      row[9] = JSON.stringify(cleared);
      row[10] = '[]';
      row[12] = failed ? 0 : 1;
      if (seq === tamperSeq) row[11] = 'reset';
      insert.run(...row, hash);
      prev = hash;
    }
    db.prepare('INSERT INTO audit_head VALUES (1, 3, ?)').run(prev);
    db.pragma('application_id = 1129468756');
    db.pragma('user_version = 2');
    db.close();
  }

  it('reads the records with their hashes kept, file untouched: the chain verifies and exports as it was written', async () => {
    const path = join(dir, 'v2.sqlite');
    version2File(path);
    const before = createHash('sha256').update(readFileSync(path)).digest('hex');
    const verify = await runCli(['audit', 'verify', '--state', path], {});
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.equal(JSON.parse(verify.stdout).records, 3);
    const records = (await exportJsonl(path)).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((r) => [r.sessionId, r.outcome, r.verified, r.errorCode, r.cleared, r.reason]),
      [
        ['old-1', 'reset', true, null, ['flow', 'variables'], 'deploy 41 broke flows'],
        [
          'old-2',
          'failed',
          false,
          'CR_ERR_RESET_SESSION_NOT_FOUND',
          ['flow', 'variables'],
          'deploy 41 broke flows',
        ],
        ['old-3', 'reset', true, null, ['flow', 'variables'], 'deploy 41 broke flows'],
      ],
    );
    // Read as this version reads it, from a private copy: the auditor's file is not upgraded.
    assert.equal(createHash('sha256').update(readFileSync(path)).digest('hex'), before);
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    db.close();
  });

  it('still names a record that was altered before the upgrade', async () => {
    const path = join(dir, 'v2-tampered.sqlite');
    version2File(path, 2);
    const verify = await runCli(['audit', 'verify', '--state', path], {});
    assert.equal(verify.code, 1, verify.stdout);
    const body = JSON.parse(verify.stdout);
    assert.equal(body.firstBad.seq, 2);
    assert.match(body.firstBad.problem, /altered/);
  });
});

/** Every outcome printed has its audit record in the state file. */
function assertEachAudited(state: string, printed: Record<string, any>[]): void {
  const db = new Database(state, { readonly: true });
  const audited = new Set(
    (
      db.prepare("SELECT json_extract(record, '$[8]') AS session_id FROM audit_records").all() as {
        session_id: string;
      }[]
    ).map((r) => r.session_id),
  );
  db.close();
  for (const line of printed)
    assert.ok(audited.has(line['sessionId']), `${line['sessionId']} was reported without an audit record`);
}

describe('one state file, two processes at once', () => {
  it('is created once and holds one chain: both runs exit 0, each outcome has exactly one record, verify passes', async () => {
    const state = join(dir, 'shared.sqlite');
    const a = range(2000, 4001);
    const b = range(2000, 6001);
    // Both start on a file that does not exist yet, and commit batches while the other does.
    const runs = [
      startCli(['reset', '--from-file', '-', '--json', '--state', state], env(), `${a.join('\n')}\n`),
      startCli(
        ['reset', '--from-file', '-', '--json', '--state', state, '--job', 'shared-b'],
        env(),
        `${b.join('\n')}\n`,
      ),
    ];
    const results = await withDeadline(Promise.all(runs.map((r) => r.done)), 60_000, 'both runs');
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assertEachAudited(state, parseJsonLines(result.stdout).sessions);
    }
    const verify = await runCli(['audit', 'verify', '--state', state], {});
    assert.equal(verify.code, 0, verify.stdout);
    assert.equal(JSON.parse(verify.stdout).records, 4000);
    const exported = (await exportJsonl(state)).stdout
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as { sessionId: string }).sessionId);
    assert.deepEqual(exported.sort(), [...a, ...b].sort());
  });
});

describe('page size of the state file', () => {
  it('creates a new file with larger pages and keeps using a file made with 4 KiB pages as it is', async () => {
    const fresh = join(dir, 'pages-new.sqlite');
    const created = await runCli(['reset', ...range(20, 7001), '--state', fresh], env());
    assert.equal(created.code, 0, created.stderr);
    const pageSize = (path: string): number => {
      const db = new Database(path, { readonly: true });
      try {
        return db.pragma('page_size', { simple: true }) as number;
      } finally {
        db.close();
      }
    };
    assert.equal(pageSize(fresh), NEW_FILE_PAGE_SIZE);

    // A file the previous release made: SQLite's default 4 KiB pages, with records in it already.
    const older = join(dir, 'pages-4k.sqlite');
    const db = new Database(older);
    db.pragma('page_size = 4096');
    db.pragma('journal_mode = WAL');
    db.close();
    openStateFile(older).close();
    const first = await runCli(['reset', ...range(20, 7101), '--state', older], env());
    const second = await runCli(['reset', ...range(20, 7201), '--state', older], env());
    assert.equal(first.code, 0, first.stderr);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(pageSize(older), 4096);
    const verify = await runCli(['audit', 'verify', '--state', older], {});
    assert.equal(verify.code, 0, verify.stdout);
    assert.equal(JSON.parse(verify.stdout).records, 40);
  });
});

describe('audit log under a crash', () => {
  it('never leaves an outcome reported without its audit record, and the chain verifies after SIGKILL', async () => {
    const state = join(dir, 'crash.sqlite');
    await withFaults(emu, { latencyMs: 1 }, async () => {
      const run = startCli(
        ['reset', '--from-file', '-', '--json', '--state', state, '--concurrency', '32'],
        env(),
        `${range(3000, 1000).join('\n')}\n`,
      );
      await waitForOutput(run, (out) => out.split('\n').length > 300);
      run.child.kill('SIGKILL');
      const killed = await withDeadline(run.done, 10_000, 'the killed run');
      const printed = parseJsonLines(killed.stdout.slice(0, killed.stdout.lastIndexOf('\n') + 1)).sessions;
      assert.ok(printed.length >= 300);
      assertEachAudited(state, printed);
      const verify = await runCli(['audit', 'verify', '--state', state], {});
      assert.equal(verify.code, 0, verify.stdout);
    });
  });
});

describe('a state file write that fails mid-run', () => {
  it('stops the run with CR_ERR_STATE_WRITE and exits; nothing is reported without its audit record or the mark saying it has none', async () => {
    const state = join(dir, 'write-fails.sqlite');
    const first = await runCli(['reset', ...range(5, 4001), '--json', '--state', state], env());
    assert.equal(first.code, 0, first.stderr);
    // From outside, as a full disk or a locked file would: every audit insert past record 1,000 fails.
    const db = new Database(state);
    db.exec(
      "CREATE TRIGGER fail_late BEFORE INSERT ON audit_records WHEN NEW.seq > 1000 BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END",
    );
    db.close();
    const result = await runCli(
      ['reset', '--from-file', '-', '--json', '--state', state, '--concurrency', '64'],
      env(),
      { stdin: `${range(3000, 5001).join('\n')}\n`, timeoutMs: 30_000 },
    );
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /CR_ERR_STATE_WRITE: state file write failed: disk I\/O error \(injected\)/);
    assert.ok(!result.stdout.includes(SECRET) && !result.stderr.includes(SECRET));
    const { sessions: lines, summary } = parseJsonLines(result.stdout);
    // What the engine applied after the failure is reported too, marked as having no audit record.
    const printed = lines.filter((line) => line['audited'] !== false);
    const unrecorded = lines.length - printed.length;
    assert.ok(printed.length <= 995, `${printed.length} outcomes reported as audited; only 995 could be`);
    assert.ok(unrecorded > 0, 'the outcomes whose commit failed are reported, marked');
    // The run still ends with its summary: what was reported, and why it stopped.
    assert.equal(summary!.total, lines.length);
    assert.equal(summary!.notAudited, unrecorded);
    assert.equal(summary!.fatal.code, 'CR_ERR_STATE_WRITE');
    assert.equal(summary!.interrupted, false);
    assertEachAudited(state, printed);
    const verify = await runCli(['audit', 'verify', '--state', state], {});
    assert.equal(verify.code, 0, verify.stdout);
  });

  it('stops with a summary and CR_ERR_STATE_WRITE when the job ledger cannot make its reservation durable', async () => {
    const state = join(dir, 'reserve-fails.sqlite');
    const ids = Array.from({ length: 9000 }, (_, i) => `ghost-r${i}`);
    const args = [
      'reset',
      '--from-file',
      '-',
      '--json',
      '--state',
      state,
      '--job',
      'reserve',
      '--concurrency',
      '64',
    ];
    // A state file to put the trigger in; then the job's first reservation (items 0-8191) is made
    // durable, and the second fails.
    const created = await runCli(['reset', 'ghost-r0', '--state', state], env());
    assert.equal(created.code, 1, created.stderr);
    const db = new Database(state);
    db.exec(
      "CREATE TRIGGER fail_reserve BEFORE UPDATE OF reserved_upto ON jobs WHEN NEW.reserved_upto > 8192 BEGIN SELECT RAISE(ABORT, 'disk full (injected)'); END",
    );
    db.close();
    const result = await runCli(args, env(), { stdin: `${ids.join('\n')}\n`, timeoutMs: 30_000 });
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /CR_ERR_STATE_WRITE: state file write failed \(the reservation mark\): disk full \(injected\)/,
    );
    const { sessions: printed, summary } = parseJsonLines(result.stdout);
    assert.equal(summary!.fatal.code, 'CR_ERR_STATE_WRITE');
    assert.equal(summary!.total, printed.length);
    assert.ok(printed.length >= 8192 && printed.length < 9000, `${printed.length} outcomes`);
    assertEachAudited(state, printed);
  });
});

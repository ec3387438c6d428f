/**
 * No reset without a true record (issue 14 §2): a session listed twice is reset once, and a close is
 * blamed on the request that caused it. Engines: the emulator, and the hostile engine of test/helpers.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEmulator } from '../src/emulator/index.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { auditRecords, emuEnv } from './helpers/records.js';
import { hostileEnv, startHostileEngine } from './helpers/hostile-engine.js';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-records-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a job resets each distinct session at most once', () => {
  it('skips repeats with CR_ERR_RESET_DUPLICATE, resets each session once, audits each once', async (t) => {
    const emu = await startEmulator({ sessions: 10 });
    t.after(() => emu.close());
    const state = join(dir, 'dups.sqlite');
    const ids = join(dir, 'dups.txt');
    writeFileSync(
      ids,
      ['session-1', 'session-2', 'session-1', 'session-3', 'session-2', 'session-1'].join('\n'),
    );
    for (const extra of [[], ['--job', 'dups-job']]) {
      const result = await runCli(
        ['reset', '--from-file', ids, '--json', '--state', state, ...extra],
        emuEnv(emu, state),
      );
      assert.equal(result.code, 0, result.stderr);
      const { sessions, summary } = parseJsonLines(result.stdout);
      const dups = sessions.filter((s) => s.error?.code === 'CR_ERR_RESET_DUPLICATE');
      assert.equal(dups.length, 3);
      assert.ok(dups.every((s) => s.outcome === 'skipped'));
      assert.equal(summary?.skipped, 3);
    }
    for (const id of ['session-1', 'session-2', 'session-3']) {
      assert.equal(emu.store.get(id)?.resets, 2, `${id}: once per run (two runs)`);
    }
    const records = await auditRecords(state);
    assert.equal(records.length, 6, 'three sessions audited once per run');
  });

  it('a resumed job reports a repeat as a duplicate, not as a second reset', async (t) => {
    const emu = await startEmulator({ sessions: 10 });
    t.after(() => emu.close());
    const state = join(dir, 'dups-resume.sqlite');
    const args = ['reset', 'session-5', 'session-6', 'session-5', '--json', '--job', 'j2', '--state', state];
    const first = await runCli(args, emuEnv(emu, state));
    const again = await runCli(args, emuEnv(emu, state));
    assert.equal(first.code, 0, first.stderr);
    assert.equal(again.code, 0, again.stderr);
    const line = parseJsonLines(again.stdout).sessions[2];
    assert.equal(line?.error?.code, 'CR_ERR_RESET_DUPLICATE');
    assert.equal(emu.store.get('session-5')?.resets, 1);
  });
});

describe('a close is blamed on the request that caused it', () => {
  const ids = Array.from({ length: 20 }, (_, i) => `s-${i + 1}`);

  for (const [what, code] of [
    ['close-1008', 'CR_ERR_TRANSPORT_POLICY'],
    ['close-1009', 'CR_ERR_TRANSPORT_TOO_BIG'],
  ] as const) {
    it(`${what} on s-7 fails s-7 alone; the sessions pipelined behind it are retried and reset`, async (t) => {
      const engine = await startHostileEngine({ 's-7': what });
      t.after(() => engine.close());
      const state = join(dir, `blame-${what}.sqlite`);
      const result = await runCli(
        // All 20 at once on one connection: a fixed rate, not the adaptive rate's gentle start.
        [
          'reset',
          ...ids,
          '--json',
          '--concurrency',
          '20',
          '--connections',
          '1',
          '--max-attempts',
          '3',
        ].concat(['--rate', '100000', '--fixed-rate']),
        { ...hostileEnv(engine), COGNIGY_RESET_STATE: state },
      );
      assert.equal(result.code, 1, result.stderr);
      const { sessions } = parseJsonLines(result.stdout);
      const failed = sessions.filter((s) => s.outcome === 'failed');
      assert.deepEqual(
        failed.map((s) => [s.sessionId, s.error.code]),
        [['s-7', code]],
      );
      for (const s of sessions.filter((x) => x.sessionId !== 's-7')) {
        assert.equal(s.outcome, 'reset', s.sessionId);
        assert.equal(engine.applied.get(s.sessionId), 1, `${s.sessionId} applied once`);
        // A session sent again counts the attempt the close cost it (the engine never processed that one).
        assert.ok(s.attempts >= (engine.sends.get(s.sessionId) ?? 0), s.sessionId);
      }
      assert.ok(
        sessions.some((s) => s.attempts > 1),
        'some sessions were behind s-7 and retried',
      );
    });
  }

  it('a close saying the credentials lack the scope still stops the run with exit 3', async (t) => {
    const engine = await startHostileEngine({ 's-3': 'close-scope' });
    t.after(() => engine.close());
    const state = join(dir, 'blame-scope.sqlite');
    const result = await runCli(['reset', ...ids, '--json', '--connections', '1'], {
      ...hostileEnv(engine),
      COGNIGY_RESET_STATE: state,
    });
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /CR_ERR_AUTH_SCOPE/);
  });
});

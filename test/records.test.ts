/**
 * No reset without a true record (issue 14 §2): what the audit log says was cleared, and outputs that
 * would overwrite the state file. Engines: the emulator, and the hostile engine of test/helpers.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { runCli } from './helpers/cli.js';
import { auditRecords, emuEnv } from './helpers/records.js';
import { hostileEnv, startHostileEngine } from './helpers/hostile-engine.js';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-records-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the audit record says what was cleared', () => {
  it('records no layer for a reset that failed (not found, garbage answer, no answer), six for one that worked', async (t) => {
    const engine = await startHostileEngine({ 'nf-1': 'not-found', 'gb-1': 'garbage', 'to-1': 'silent' });
    t.after(() => engine.close());
    const state = join(dir, 'cleared.sqlite');
    const result = await runCli(
      [
        'reset',
        'ok-1',
        'nf-1',
        'gb-1',
        'to-1',
        '--json',
        '--state',
        state,
        '--max-attempts',
        '1',
        '--ack-timeout',
        '2',
      ],
      { ...hostileEnv(engine), COGNIGY_RESET_STATE: state },
      { timeoutMs: 60_000 },
    );
    // ack timeout by default is 10 s; the silent session costs one deadline.
    assert.equal(result.code, 1, result.stderr);
    const byId = new Map((await auditRecords(state)).map((r) => [r.sessionId, r]));
    assert.deepEqual(byId.get('ok-1')?.cleared, ['flow', 'dialog', 'engine', 'variables', 'history', 'nlu']);
    for (const id of ['nf-1', 'gb-1', 'to-1']) {
      assert.equal(byId.get(id)?.outcome, 'failed', id);
      assert.deepEqual(byId.get(id)?.cleared, [], `${id} cleared nothing`);
    }
  });

  it('a reset whose flow stays ACTIVE past the deadline does not record the flow as cleared', async (t) => {
    const emu = await startEmulator({ sessions: 0 });
    t.after(() => emu.close());
    emu.store.create({ sessionId: 'stuck-1', stuck: true });
    const state = join(dir, 'cleared-verify.sqlite');
    const result = await runCli(
      ['reset', 'stuck-1', '--json', '--verify-timeout', '0.3'],
      emuEnv(emu, state),
    );
    assert.equal(result.code, 1, result.stderr);
    const [record] = await auditRecords(state);
    assert.equal(record?.errorCode, 'CR_ERR_RESET_VERIFY_ACTIVE');
    assert.deepEqual(record?.cleared, ['dialog', 'engine', 'variables', 'history', 'nlu']);
  });
});

describe('outputs never overwrite durable state', () => {
  let emu: Emulator;
  before(async () => (emu = await startEmulator({ sessions: 10 })));
  after(() => emu.close());

  const collide = async (state: string, metrics: string): Promise<void> => {
    const result = await runCli(
      ['reset', 'session-1', 'session-2', '--state', state, '--metrics-file', metrics],
      emuEnv(emu, state),
    );
    assert.equal(result.code, 2, `${metrics}: ${result.stderr}`);
    assert.match(result.stderr, /CR_ERR_OPT_INVALID: --metrics-file .* would be overwritten/);
  };

  it('refuses the state file and its companions, under other spellings and through symlinks, sending nothing', async () => {
    const sub = mkdtempSync(join(dir, 'collide-'));
    const state = join(sub, 'state.sqlite');
    // A first run makes the state file (and its audit log) exist.
    const first = await runCli(['reset', 'session-3'], emuEnv(emu, state));
    assert.equal(first.code, 0, first.stderr);
    const before = readFileSync(state);
    const sendsBefore = emu.stats().sends;
    symlinkSync(state, join(sub, 'link-to-state'));
    symlinkSync(`${state}-journal`, join(sub, 'dangling-to-journal'));
    for (const metrics of [
      state,
      `${sub}/./../${sub.split('/').at(-1)}/state.sqlite`,
      `${state}-wal`,
      `${state}-shm`,
      `${state}-journal`,
      join(sub, 'link-to-state'),
      join(sub, 'dangling-to-journal'),
    ]) {
      await collide(state, metrics);
    }
    assert.equal(emu.stats().sends, sendsBefore, 'nothing was sent');
    assert.deepEqual(readFileSync(state), before, 'the state file is unchanged');
  });

  it('refuses a metrics file that is the input file, and still accepts a path of its own', async () => {
    const sub = mkdtempSync(join(dir, 'collide-in-'));
    const state = join(sub, 'state.sqlite');
    const ids = join(sub, 'ids.txt');
    writeFileSync(ids, 'session-4\n');
    const refused = await runCli(
      ['reset', '--from-file', ids, '--state', state, '--metrics-file', ids],
      emuEnv(emu, state),
    );
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(readFileSync(ids, 'utf8'), 'session-4\n');
    const ok = await runCli(
      ['reset', '--from-file', ids, '--state', state, '--metrics-file', join(sub, 'metrics.prom')],
      emuEnv(emu, state),
    );
    assert.equal(ok.code, 0, ok.stderr);
  });
});

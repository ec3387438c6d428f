/**
 * The emulator's `holdAfterSends` fault: it answers the first N SEND frames, applies later ones but holds
 * their answers (and those behind them on the connection, in order) until the fault is set back to 0.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startEmulator } from '../src/emulator/index.js';
import { dial, getJson, seedDirective, sendJson, stateCheck, withDeadline } from './helpers/ws.js';

describe('emulator: holdAfterSends', () => {
  it('holds the answers past the Nth SEND, applied, until it is set back to 0; order is kept', async (t) => {
    const emu = await startEmulator({ sessions: 3, faults: { holdAfterSends: 1 } });
    t.after(() => emu.close());
    const client = await dial(emu.wsUrl);
    t.after(() => client.close());
    assert.equal(
      (await client.request({ ...seedDirective('session-1'), requestId: 's1' }))['status'],
      'RESET_COMPLETE',
    );
    client.send({ ...seedDirective('session-2'), requestId: 's2' });
    client.send(stateCheck('session-1', 'q1'));
    // Every frame arrived; only the first SEND's answer left.
    const stats = await withDeadline(
      (async () => {
        for (;;) {
          const { body } = await getJson(`${emu.httpUrl}/emulator/stats`);
          if (body.framesIn === 3) return body as { answersOut: number; resetsApplied: number };
        }
      })(),
      10_000,
      'the frames to arrive',
    );
    assert.equal(stats.answersOut, 1);
    assert.equal(stats.resetsApplied, 2, 'a held SEND is applied; only its answer waits');
    assert.equal((await getJson(`${emu.httpUrl}/emulator/sessions/session-2`)).body.flowState, 'RESET');

    const released = await sendJson('PUT', `${emu.httpUrl}/emulator/faults`, { holdAfterSends: 0 });
    assert.equal(released.status, 200);
    const first = await withDeadline(client.next(), 10_000, 'the held answer');
    assert.equal(first['requestId'], 's2');
    assert.equal(first['status'], 'RESET_COMPLETE');
    assert.equal((await withDeadline(client.next(), 10_000, 'the query behind it'))['requestId'], 'q1');
  });

  it('refuses a hold that is not a whole number', async (t) => {
    const emu = await startEmulator({ sessions: 1 });
    t.after(() => emu.close());
    const bad = await sendJson('PUT', `${emu.httpUrl}/emulator/faults`, { holdAfterSends: 1.5 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /holdAfterSends/);
  });
});

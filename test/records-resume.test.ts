/**
 * Resume never resets a session twice (issue 14 §2): a job SIGKILLed while its sessions finish a
 * blocking call (their flow stays ACTIVE after the reset landed) is resumed, and the check before
 * sending tells "reset, still finishing" from "not reset"; where it cannot tell, it sends nothing and
 * says so. The emulator counts the resets each session received.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { parseJsonLines, runCli, startCli } from './helpers/cli.js';
import { withDeadline } from './helpers/ws.js';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-resume-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

function envFor(emu: Emulator): Record<string, string> {
  return {
    COGNIGY_WS_URL: emu.wsUrl,
    COGNIGY_TENANT_ID: 'tenant-1',
    COGNIGY_BOT_ID: 'bot-1',
    COGNIGY_API_TOKEN: 'dev-token',
  };
}

/** Resolves once `predicate` holds (checked every few ms, not a busy loop); rejects at the deadline. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  let gaveUp = false;
  try {
    await withDeadline(
      (async () => {
        while (!gaveUp && !predicate()) await new Promise((resolve) => setTimeout(resolve, 5));
      })(),
      30_000,
      what,
    );
  } finally {
    gaveUp = true;
  }
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `session-${i + 1}`);

/** Runs a job until the engine applied `applied` resets, kills it, and resumes it once. */
async function killAndResume(
  emu: Emulator,
  sessions: string[],
  applied: number,
  extra: string[],
): Promise<{ code: number | null; lines: Record<string, any>[]; stderr: string }> {
  const state = join(mkdtempSync(join(dir, 'job-')), 'state.sqlite');
  const args = ['reset', ...sessions, '--json', '--no-progress', '--job', 'j', '--state', state, ...extra];
  const run = startCli(args, envFor(emu));
  try {
    await until(() => emu.stats().resetsApplied >= applied, 'resets applied before the kill');
  } finally {
    run.child.kill('SIGKILL');
  }
  const killed = await withDeadline(run.done, 10_000, 'the killed run');
  assert.equal(killed.signal, 'SIGKILL');
  const resumed = await runCli(args, envFor(emu), { timeoutMs: 90_000 });
  return { code: resumed.code, lines: parseJsonLines(resumed.stdout).sessions, stderr: resumed.stderr };
}

describe('resume never resets a session twice', () => {
  for (const strict of [false, true]) {
    it(`sessions killed while finishing a blocking call are not sent again (${strict ? "the seed's bare shapes" : 'full answers'})`, async (t) => {
      const emu = await startEmulator({
        sessions: 60,
        strict,
        faults: { blockingShare: strict ? 0.5 : 1, blockingMs: 2500 },
      });
      t.after(() => emu.close());
      const { code, lines, stderr } = await killAndResume(emu, ids(60), 40, ['--concurrency', '60']);
      assert.equal(code, 0, stderr);
      for (const id of ids(60)) assert.equal(emu.store.get(id)?.resets, 1, `${id} was reset once`);
      const skipped = lines.filter((l) => l.outcome === 'skipped');
      assert.ok(skipped.length >= 40, 'the sessions reset before the kill were found reset');
      assert.ok(lines.every((l) => l.outcome !== 'failed'));
    });
  }

  it('when the check cannot tell (flow only, bare shapes), a flow that ends its call is found reset', async (t) => {
    const emu = await startEmulator({
      sessions: 30,
      strict: true,
      faults: { blockingShare: 1, blockingMs: 2000 },
    });
    t.after(() => emu.close());
    const { code, stderr } = await killAndResume(emu, ids(30), 30, ['--flow-only', '--concurrency', '30']);
    assert.equal(code, 0, stderr);
    for (const id of ids(30)) assert.equal(emu.store.get(id)?.resets, 1, `${id} was reset once`);
  });

  it('when the check cannot tell and the flow never leaves ACTIVE, nothing is sent again and the outcome says why', async (t) => {
    const emu = await startEmulator({ sessions: 0, strict: true });
    t.after(() => emu.close());
    const stuck = ['stuck-1', 'stuck-2', 'stuck-3'];
    for (const sessionId of stuck) emu.store.create({ sessionId, stuck: true });
    const { code, lines } = await killAndResume(emu, stuck, 3, ['--flow-only', '--verify-timeout', '1']);
    assert.equal(code, 1);
    for (const id of stuck) assert.equal(emu.store.get(id)?.resets, 1, `${id} was reset once`);
    // Outcomes are reported as they finish, not in input order.
    assert.deepEqual(
      lines.map((l) => [l.sessionId, l.outcome, l.error?.code]).sort(),
      stuck.map((id) => [id, 'failed', 'CR_ERR_RESET_RESUME_UNSURE']),
    );
  });
});

/**
 * A state file that cannot be written stops the run before the first send, and a state file that fails
 * mid-run (a full disk) leaves no applied reset unreported: each is recorded, or printed marked
 * `"audited": false` (issue 14 §2).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { CLI, type CliResult, cliEnv, collectRun, parseJsonLines, runCli } from './helpers/cli.js';
import { emuEnv } from './helpers/records.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-state-'));
  chmodSync(dir, 0o777);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Root may write any file: the run is made as `nobody` then, so a read-only file is read-only to it. */
const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/** Runs the CLI through `sh`, so a test can set limits (`ulimit`) or run it as another user. */
function runShell(
  script: string,
  args: string[],
  env: Record<string, string>,
  user = {},
): Promise<CliResult> {
  const child = spawn('/bin/sh', ['-c', `${script}; exec "$0" "$@"`, process.execPath, CLI, ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  return collectRun(child, 90_000, 'cognigy-reset');
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `session-${i + 1}`);

describe('a state file that cannot be written stops the run before the first send', () => {
  let emu: Emulator;
  before(async () => (emu = await startEmulator({ sessions: 200 })));
  after(() => emu.close());

  for (const [title, extra] of [
    ['without --job', []],
    ['with --job', ['--job', 'ro-job']],
  ] as const) {
    it(`a read-only state file, ${title}: exit 2, nothing sent`, async () => {
      const sub = mkdtempSync(join(dir, 'ro-'));
      chmodSync(sub, 0o777);
      const state = join(sub, 'state.sqlite');
      // A first, writable run makes the file; then it is made read-only.
      const first = await runCli(['reset', 'session-200'], emuEnv(emu, state));
      assert.equal(first.code, 0, first.stderr);
      chmodSync(state, 0o444);
      const sends = emu.stats().sends;
      const result = await runShell(
        'true',
        ['reset', ...ids(60), '--json', '--concurrency', '16', ...extra],
        emuEnv(emu, state),
        asUser,
      );
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /CR_ERR_STATE_(OPEN|WRITE)/);
      assert.equal(emu.stats().sends, sends, 'no SEND reached the engine');
    });
  }
});

describe('a state file that fails mid-run leaves no applied reset unreported', () => {
  for (const [title, extra] of [
    ['audit only', []],
    ['with --job', ['--job', 'full-job']],
  ] as const) {
    it(`a full disk (file size limit), ${title}: every reset the engine applied is audited or marked "audited": false`, async (t) => {
      const emu = await startEmulator({ sessions: 4000 });
      t.after(() => emu.close());
      const sub = mkdtempSync(join(dir, 'full-'));
      const state = join(sub, 'state.sqlite');
      const list = join(sub, 'ids.txt');
      writeFileSync(list, `${ids(4000).join('\n')}\n`);
      // Files may not grow past 1 MiB (2048 blocks of 512 bytes): the state file fills up mid-run.
      const result = await runShell(
        'trap "" XFSZ; ulimit -f 2048',
        ['reset', '--from-file', list, '--json', '--concurrency', '64', '--no-progress', ...extra],
        emuEnv(emu, state),
      );
      assert.equal(result.code, 1, result.stderr);
      const { sessions, summary } = parseJsonLines(result.stdout);
      assert.equal(summary?.fatal?.code, 'CR_ERR_STATE_WRITE', result.stderr);
      const unaudited = new Set(sessions.filter((s) => s.audited === false).map((s) => s.sessionId));
      assert.ok(unaudited.size > 0, 'the disk filled mid-run');
      assert.equal(summary?.notAudited, unaudited.size);
      // What the audit log holds (read without the limit).
      const exported = await runCli(['audit', 'export', '--state', state], {});
      assert.equal(exported.code, 0, exported.stderr);
      const audited = new Set(
        exported.stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => (JSON.parse(l) as { sessionId: string }).sessionId),
      );
      let applied = 0;
      for (const record of emu.store.touched()) {
        if (record.resets === 0) continue;
        applied++;
        assert.ok(
          audited.has(record.sessionId) || unaudited.has(record.sessionId),
          `${record.sessionId} was reset on the engine but is neither audited nor marked`,
        );
      }
      assert.ok(applied > audited.size, 'some resets were applied after the disk filled');
    });
  }
});

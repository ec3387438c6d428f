/**
 * Every run stops (issue 14 §3), even when stdout is a pipe whose reader never reads: after SIGINT or
 * SIGTERM, stdout is abandoned once it took nothing for a bounded time, and the run ends with its exit
 * code and its summary on stderr, every reset it applied audited.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEmulator } from '../src/emulator/index.js';
import { CLI, type CliResult, cliEnv } from './helpers/cli.js';
import { auditRecords, emuEnv } from './helpers/records.js';
import { withDeadline } from './helpers/ws.js';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-stdout-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A named pipe, already full, that nobody will ever read: the write end to give a child as stdout. */
function fullPipe(name: string): { writeFd: number; close: () => void } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  // Opened for reading first (never read), so that opening for writing does not wait.
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  const block = Buffer.alloc(4096, 'x');
  for (;;) {
    try {
      writeSync(writeFd, block);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
  }
  return {
    writeFd,
    close: () => {
      closeSync(writeFd);
      closeSync(readFd);
    },
  };
}

describe('a run whose stdout is never read', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} ends it with exit 130, the summary on stderr and every applied reset audited`, async (t) => {
      const total = 3000;
      const emu = await startEmulator({ sessions: total });
      t.after(() => emu.close());
      const ids = join(dir, `ids-${signal}.txt`);
      writeFileSync(ids, Array.from({ length: total }, (_, i) => `session-${i + 1}`).join('\n'));
      const state = join(dir, `state-${signal}.sqlite`);
      const pipe = fullPipe(`stdout-${signal}`);
      t.after(() => pipe.close());
      const args = ['reset', '--from-file', ids, '--json', '--progress-interval', '0.05'];
      const child = spawn(process.execPath, [CLI, ...args], {
        env: cliEnv(emuEnv(emu, state)),
        stdio: ['ignore', pipe.writeFd, 'pipe'] as const,
      });
      t.after(() => child.kill('SIGKILL'));
      let stderr = '';
      child.stderr!.setEncoding('utf8');
      const done = new Promise<CliResult>((resolve) =>
        child.once('close', (code, sig) => resolve({ code, signal: sig, stdout: '', stderr })),
      );
      // Sessions are being reset, their lines going nowhere: the run soon waits for its reader.
      await withDeadline(
        new Promise<void>((resolve) =>
          child.stderr!.on('data', (chunk: string) => {
            stderr += chunk;
            if (/progress: ([2-9]\d|\d{3,})\//.test(stderr)) resolve();
          }),
        ),
        30_000,
        'the first resets',
      );
      child.kill(signal);
      const result = await withDeadline(done, 30_000, 'the run to stop').catch((err: unknown) => {
        throw new Error(`${String(err)}\n${stderr.slice(-2000)}`);
      });
      assert.equal(result.code, 130, result.stderr);
      assert.match(result.stderr, /stdout took nothing for \d+ ms after the signal: its lines are dropped/);
      assert.match(
        result.stderr,
        /"summary":\{"total":\d+|sessions: \d+ {2}reset: \d+/,
        'the summary, on stderr',
      );
      const applied = emu.stats().resetsApplied;
      assert.ok(applied > 0 && applied < total, `${applied} resets applied`);
      const records = await auditRecords(state);
      assert.equal(records.length, applied, 'one audit record for each reset the engine applied');
      for (const record of records)
        assert.equal(emu.store.get(record.sessionId)?.resets, 1, record.sessionId);
    });
  }
});

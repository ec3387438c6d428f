/**
 * What the `reset` command's test files share: a temp folder of the file's own (made now, removed after
 * the file's tests), the emulator's environment with the audit log's state file in it, and id lists.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { Emulator } from '../../src/emulator/index.js';

export interface CliScratch {
  dir: string;
  /** The engine's variables for `emu`, with `extra` on top. */
  envFor: (emu: Emulator, extra?: Record<string, string>) => Record<string, string>;
  /** Writes `ids` one per line to `name` in the folder; its path. */
  idsFile: (name: string, ids: string[]) => string;
}

/** Called at a test file's top level: its `after` removes the folder. */
export function cliScratch(): CliScratch {
  const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    envFor: (emu, extra = {}) => ({
      COGNIGY_WS_URL: emu.wsUrl,
      COGNIGY_TENANT_ID: 'tenant-1',
      COGNIGY_BOT_ID: 'bot-1',
      COGNIGY_API_TOKEN: 'dev-token',
      // The audit log is on by default: keep each test run's state file in its temp dir.
      COGNIGY_RESET_STATE: join(dir, 'default.sqlite'),
      ...extra,
    }),
    idsFile: (name, ids) => {
      const path = join(dir, name);
      writeFileSync(path, `${ids.join('\n')}\n`);
      return path;
    },
  };
}

/** `session-FROM` … `session-(FROM+N-1)`. */
export const range = (n: number, from = 1): string[] =>
  Array.from({ length: n }, (_, i) => `session-${i + from}`);

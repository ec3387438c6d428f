/** What the records tests share: the environment of a run against an emulator, and its audit log read back. */
import * as assert from 'node:assert/strict';
import type { Emulator } from '../../src/emulator/index.js';
import { runCli } from './cli.js';

export function emuEnv(emu: Emulator, state: string): Record<string, string> {
  return {
    COGNIGY_WS_URL: emu.wsUrl,
    COGNIGY_TENANT_ID: 'tenant-1',
    COGNIGY_BOT_ID: 'bot-1',
    COGNIGY_API_TOKEN: 'dev-token',
    COGNIGY_RESET_STATE: state,
  };
}

/** Every record of the state file's audit log, as `audit export` prints them. */
export async function auditRecords(state: string): Promise<Record<string, any>[]> {
  const result = await runCli(['audit', 'export', '--state', state], {});
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, any>);
}

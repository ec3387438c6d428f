import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from './helpers/cli.js';
import { dial, dialRefused, stateCheck, withDeadline } from './helpers/ws.js';

const CLI = fileURLToPath(new URL('../../bin/cognigy-reset', import.meta.url));

describe('cognigy-reset emulator (child process)', () => {
  it('--api-key adds a REST API key taken as X-API-Key only, never as Bearer; dev-token stays', async (t) => {
    const child = spawn(process.execPath, [CLI, 'emulator', '--sessions', '3', '--api-key', 'rest-key-1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout });
    const [first] = (await withDeadline(once(lines, 'line'), 10_000, 'the listening line')) as [string];
    const { httpUrl } = JSON.parse(first) as { httpUrl: string };
    const reset = (headers: Record<string, string>): Promise<number> =>
      fetch(`${httpUrl}/new/v2.0/sessions/session-2/state/reset`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ userId: 'user-2' }),
      }).then((res) => res.status);
    assert.equal(await reset({ 'x-api-key': 'rest-key-1' }), 200);
    assert.equal(await reset({ authorization: 'Bearer rest-key-1' }), 401);
    assert.equal(await reset({ authorization: 'Bearer dev-token' }), 200);
  });

  it("--url-token names the Socket endpoint's URLToken, --disabled-url-token a disabled endpoint's", async (t) => {
    const child = spawn(
      process.execPath,
      [CLI, 'emulator', '--sessions', '3', '--url-token', 'tok-live', '--disabled-url-token', 'tok-off'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.after(() => child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout });
    const [first] = (await withDeadline(once(lines, 'line'), 10_000, 'the listening line')) as [string];
    const { httpUrl } = JSON.parse(first) as { httpUrl: string };
    const dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-emulator-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const rows = join(dir, 'rows.csv');
    writeFileSync(rows, 'sessionId,userId\nsession-1,user-1\n');
    const reset = (urlToken: string) =>
      runCli(['reset', '--from-file', rows, '--transport', 'cognigy-socket', '--endpoint-url', httpUrl], {
        COGNIGY_URL_TOKEN: urlToken,
        COGNIGY_RESET_STATE: join(dir, `${urlToken}.sqlite`),
      });
    const live = await reset('tok-live');
    assert.equal(live.code, 0, live.stderr);
    const off = await reset('tok-off');
    assert.equal(off.code, 3);
    assert.match(off.stderr, /CR_ERR_AUTH_FORBIDDEN: .*endpoint is disabled/);
    const dev = await reset('dev-url-token');
    assert.equal(dev.code, 3, 'the default URLToken is replaced');
  });

  it('prints one listening line, honours --token scopes and --sessions, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'emulator', '--sessions', '2', '--token', 'ops-token:bot:runtime:execute'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const lines = createInterface({ input: child.stdout });
    const [first] = (await withDeadline(once(lines, 'line'), 10_000, 'the listening line')) as [string];
    const ready = JSON.parse(first);
    assert.equal(ready.event, 'listening');
    assert.match(ready.wsUrl, /^ws:\/\/127\.0\.0\.1:\d+\/ws\/v1$/);
    assert.match(ready.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);

    // The listed token replaces dev-token; its scopes lack session:manage.
    assert.equal((await dialRefused(ready.wsUrl, { token: 'dev-token' })).status, 401);
    const client = await dial(ready.wsUrl, { token: 'ops-token' });
    assert.equal((await client.request(stateCheck('session-2')))['flowState'], 'ACTIVE');
    assert.equal((await client.request(stateCheck('session-3')))['status'], 'SESSION_NOT_FOUND');
    client.close();

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await withDeadline(exited, 10_000, 'exit')) as [number];
    assert.equal(code, 0);
  });

  it('exits 2 with a message naming the option for an invalid flag value', async () => {
    const child = spawn(process.execPath, [CLI, 'emulator', '--drop-rate', 'often'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await withDeadline(once(child, 'exit'), 10_000, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(stderr, /--drop-rate/);
    assert.match(stderr, /often/);
  });

  it('exits 2 for an empty --token', async () => {
    for (const token of ['', ':session:manage']) {
      const result = await runCli(['emulator', '--token', token], {}, { timeoutMs: 10_000 });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, '');
      assert.match(
        result.stderr,
        /^cognigy-reset: CR_ERR_OPT_INVALID: option '--token .*Expected a token that is not empty/,
      );
    }
  });

  it('warns on stderr of a scope the engine does not check and of a host that is not loopback', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'emulator', '--host', '0.0.0.0', '--token', 'weak:sesion:manage'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const lines = createInterface({ input: child.stdout });
    const [first] = (await withDeadline(once(lines, 'line'), 10_000, 'the listening line')) as [string];
    assert.equal(JSON.parse(first).event, 'listening');
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await withDeadline(exited, 10_000, 'exit');
    assert.match(
      stderr,
      /warning: token scope "sesion:manage" is not one the engine checks \(bot:runtime:execute, session:manage\)/,
    );
    assert.match(stderr, /warning: listening on 0\.0\.0\.0, not loopback/);
  });

  it('exits 2 with CR_ERR_OPT_LISTEN when --port is in use', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const result = await runCli(['emulator', '--port', String(port)], {}, { timeoutMs: 10_000 });
      assert.equal(result.code, 2);
      assert.equal(result.stdout, '');
      assert.match(
        result.stderr,
        new RegExp(
          `CR_ERR_OPT_LISTEN: cannot listen on 127\\.0\\.0\\.1:${port} \\(--port\\): the address is in use`,
        ),
      );
    } finally {
      holder.close();
    }
  });
});

/**
 * Every value from outside is bounded: a bound that is hit is an error with its own code, reached in
 * bounded time and memory, never a busy loop or a run held for ever.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { outboxEvent, urlFingerprint, WebhookDeliverer } from '../src/sinks/webhook.js';
import { blankOutcome } from '../src/reset/outcome.js';
import { openStore } from '../src/store/index.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { endlessBody, hostileHttp, restRows, silentTcp } from './helpers/hostile-servers.js';

const KEY = 'bounds-key-77aa';
let dir: string;
let rows: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-bounds-'));
  rows = join(dir, 'rows.csv');
  writeFileSync(rows, restRows(2));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const rest = (apiUrl: string, ...more: string[]): string[] => [
  'reset',
  '--transport',
  'cognigy-rest',
  '--api-url',
  apiUrl,
  '--from-file',
  rows,
  '--json',
  '--no-audit',
  '--no-progress',
  '--rate',
  '1000',
  ...more,
];

/** The codes the sessions failed with. */
function codes(stdout: string): string[] {
  return parseJsonLines(stdout).sessions.map((s) => s['error']?.code as string);
}

describe('Retry-After past the bound fails the request with its own code', () => {
  for (const [name, value] of [
    ['a day in seconds', '86400'],
    ['a thousand digits', '9'.repeat(1000)],
    ['a date in the year 9999', 'Fri, 31 Dec 9999 23:59:59 GMT'],
  ] as const) {
    it(`Retry-After: ${name}`, async (t) => {
      const api = await hostileHttp((_req, res) =>
        res
          .writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': value })
          .end('{"status":429}'),
      );
      t.after(() => api.close());
      const result = await runCli(rest(api.url), { COGNIGY_API_KEY: KEY }, { timeoutMs: 30_000 });
      assert.equal(result.code, 1, result.stderr);
      assert.deepEqual(codes(result.stdout), [
        'CR_ERR_RESET_RETRY_AFTER_TOO_LONG',
        'CR_ERR_RESET_RETRY_AFTER_TOO_LONG',
      ]);
      // Refused, not retried: one request a session.
      assert.equal(api.hits, 2);
    });
  }
});

describe('HTTP answer bodies are bounded in size and time', () => {
  it('a REST answer that never ends fails with CR_ERR_TRANSPORT_BODY_TOO_LARGE', async (t) => {
    const api = await hostileHttp((_req, res) => endlessBody(res));
    t.after(() => api.close());
    const result = await runCli(rest(api.url, '--ack-timeout', '60'), { COGNIGY_API_KEY: KEY });
    assert.equal(result.code, 1, result.stderr);
    assert.deepEqual(codes(result.stdout), [
      'CR_ERR_TRANSPORT_BODY_TOO_LARGE',
      'CR_ERR_TRANSPORT_BODY_TOO_LARGE',
    ]);
  });

  it('a REST answer declaring a huge Content-Length is refused before it is read', async (t) => {
    const api = await hostileHttp((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2 ** 40) });
      res.write('{');
    });
    t.after(() => api.close());
    const result = await runCli(rest(api.url, '--ack-timeout', '60'), { COGNIGY_API_KEY: KEY });
    assert.equal(result.code, 1, result.stderr);
    assert.deepEqual(codes(result.stdout), [
      'CR_ERR_TRANSPORT_BODY_TOO_LARGE',
      'CR_ERR_TRANSPORT_BODY_TOO_LARGE',
    ]);
  });

  it('a REST answer that trickles for ever misses its deadline: CR_ERR_TRANSPORT_REST_TIMEOUT', async (t) => {
    const api = await hostileHttp((_req, res) => endlessBody(res, ' '));
    t.after(() => api.close());
    const result = await runCli(rest(api.url, '--ack-timeout', '0.5', '--max-attempts', '1'), {
      COGNIGY_API_KEY: KEY,
    });
    assert.equal(result.code, 1, result.stderr);
    assert.deepEqual(codes(result.stdout), [
      'CR_ERR_TRANSPORT_REST_TIMEOUT',
      'CR_ERR_TRANSPORT_REST_TIMEOUT',
    ]);
  });

  it('an OAuth2 token endpoint answer that never ends fails with CR_ERR_TRANSPORT_BODY_TOO_LARGE', async (t) => {
    const api = await hostileHttp((req, res) => {
      if (req.url?.startsWith('/auth/') === true) endlessBody(res);
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    t.after(() => api.close());
    const result = await runCli(rest(api.url, '--ack-timeout', '60'), {
      COGNIGY_OAUTH_TOKEN_URL: `${api.url}/auth/oauth2/token`,
      COGNIGY_OAUTH_CLIENT_ID: 'client',
      COGNIGY_OAUTH_CLIENT_SECRET: 'secret-OAUTH-5c5c',
    });
    assert.equal(result.code, 1, result.stderr);
    assert.ok(
      codes(result.stdout).every((code) => code === 'CR_ERR_TRANSPORT_BODY_TOO_LARGE'),
      result.stdout,
    );
    assert.doesNotMatch(result.stdout + result.stderr, /secret-OAUTH-5c5c/);
  });
});

describe('handshakes are bounded in time', () => {
  it('a runtime WebSocket server that accepts and never answers the upgrade: CR_ERR_TRANSPORT_HANDSHAKE_TIMEOUT', async (t) => {
    const silent = await silentTcp();
    t.after(() => silent.close());
    const result = await runCli(
      ['reset', 'session-1', '--json', '--no-audit', '--no-progress', '--max-attempts', '1'],
      {
        COGNIGY_WS_URL: silent.url.replace('http:', 'ws:'),
        COGNIGY_TENANT_ID: 't',
        COGNIGY_BOT_ID: 'b',
        COGNIGY_API_TOKEN: 'tok',
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 1, result.stderr);
    assert.deepEqual(codes(result.stdout), ['CR_ERR_TRANSPORT_HANDSHAKE_TIMEOUT']);
  });
});

describe('input lines are bounded', () => {
  it('a file with a line over 1 MiB is refused before anything is sent: CR_ERR_CLI_LINE_TOO_LONG, exit 2', async (t) => {
    const api = await hostileHttp((_req, res) => res.writeHead(200).end('{}'));
    t.after(() => api.close());
    const path = join(dir, 'long-line.csv');
    writeFileSync(path, `${restRows(1)}s-2,${'u'.repeat(2 * 1024 * 1024)},x,y\n`);
    const result = await runCli(
      rest(api.url).map((arg) => (arg === rows ? path : arg)),
      { COGNIGY_API_KEY: KEY },
    );
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /CR_ERR_CLI_LINE_TOO_LONG: .*line 3 is longer than 1 MiB/);
    assert.equal(api.hits, 0);
  });

  it('on stdin, the long line fails with CR_ERR_CLI_LINE_TOO_LONG and the lines after it are read', async (t) => {
    const api = await hostileHttp((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
    );
    t.after(() => api.close());
    const input = `${restRows(1)}${'x'.repeat(3 * 1024 * 1024)}\n${restRows(3).split('\n').slice(2).join('\n')}`;
    const result = await runCli(
      rest(api.url).map((arg) => (arg === rows ? '-' : arg)),
      { COGNIGY_API_KEY: KEY },
      { stdin: input },
    );
    assert.equal(result.code, 1, result.stderr);
    const { sessions } = parseJsonLines(result.stdout);
    const failed = sessions.filter((s) => s['outcome'] === 'failed');
    assert.deepEqual(
      failed.map((s) => s['error']?.code),
      ['CR_ERR_CLI_LINE_TOO_LONG'],
    );
    assert.deepEqual(
      sessions
        .filter((s) => s['outcome'] === 'reset')
        .map((s) => s['sessionId'])
        .sort(),
      ['s-1', 's-2', 's-3'],
    );
  });
});

describe('secret files are bounded', () => {
  it('--token-file naming an endless device is refused at once: CR_ERR_OPT_INVALID, exit 2, nothing sent', async (t) => {
    const api = await hostileHttp((_req, res) => res.writeHead(200).end('{}'));
    t.after(() => api.close());
    const big = join(dir, 'big-token');
    writeFileSync(big, 'x'.repeat(65 * 1024));
    for (const path of ['/dev/zero', big]) {
      const result = await runCli([...rest(api.url), '--token-file', path], {});
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /CR_ERR_OPT_INVALID: --token-file .* holds more than 65536 bytes/);
    }
    assert.equal(api.hits, 0);
  });
});

describe('a hostile webhook tracker', () => {
  /** A state file whose outbox holds `n` events for `url`, and a deliverer for it. */
  async function outbox(name: string, url: string, n: number) {
    const path = join(dir, name);
    const store = await openStore(path, { writerThread: false });
    const writer = await store.writer();
    const events = Array.from({ length: n }, (_, i) =>
      outboxEvent(blankOutcome(`session-${i}`, 'reset', []), {
        urlSha256: urlFingerprint(url),
        jobId: null,
        tenant: 't',
        botId: 'b',
      }),
    );
    await Promise.all(events.map((event) => writer.append({ outbox: event })));
    await writer.close();
    const deliverer = new WebhookDeliverer(store, { url, timeoutMs: 2000, baseDelayMs: 10 });
    return { deliverer, close: () => store.close() };
  }

  it('asking to wait a thousand digits of seconds stops delivery for the run, after one request', async (t) => {
    const tracker = await hostileHttp((_req, res) =>
      res.writeHead(503, { 'retry-after': '9'.repeat(1000) }).end(),
    );
    t.after(() => tracker.close());
    const { deliverer, close } = await outbox('webhook-retry-after.sqlite', `${tracker.url}/events`, 3);
    t.after(close);
    await deliverer.deliver(Date.now() + 3000);
    assert.equal(tracker.hits, 1);
    assert.match(deliverer.stats.stopped ?? '', /Retry-After/);
    assert.equal(await deliverer.countPending(), 3);
  });

  it('an answer body that never ends costs one bounded read: the events are delivered', async (t) => {
    let written = 0;
    const chunk = 'x'.repeat(256 * 1024);
    const tracker = await hostileHttp((_req, res) => {
      endlessBody(res, chunk);
      const count = setInterval(() => {
        written = res.socket?.bytesWritten ?? written;
        if (res.destroyed) clearInterval(count);
      }, 5);
    });
    t.after(() => tracker.close());
    const { deliverer, close } = await outbox('webhook-endless.sqlite', `${tracker.url}/events`, 3);
    t.after(close);
    await deliverer.deliver(Date.now() + 10_000);
    assert.equal(await deliverer.countPending(), 0);
    assert.equal(deliverer.stats.delivered, 3);
    // The client stopped reading at its bound; what the socket took beyond that is the kernel's buffers.
    assert.ok(written < 16 * 1024 * 1024, `the tracker wrote ${written} bytes before the client left`);
  });
});

/**
 * No secret leaves for another host, and none is shown (docs/security.md "Secrets"). Hostile servers
 * redirect every client we have to a trap on another origin; user URLs carry secrets in query names of
 * their own, in userinfo and fragments, and malformed URLs hold them too.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CognigyResetError } from '../src/errors.js';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { OAuth2TokenProvider } from '../src/transports/auth/oauth2.js';
import { CognigyRestClient } from '../src/transports/cognigy-rest/client.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { redactUrl } from '../src/util/redact.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { redirector, trap } from './helpers/hostile-http.js';

const KEY = 'api-key-SECRET-KEY-9c1d';
const CLIENT_SECRET = 'client-SECRET-77aa';
const REFRESH = 'refresh-SECRET-41bb';
const TOKEN = 'dev-token';

let dir: string;
let emu: Emulator;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-secrets-'));
  emu = await startEmulator({ sessions: 10, tokens: [{ token: TOKEN }, { token: KEY }] });
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

const target = { sessionId: 'session-1', userId: 'user-1' };
const noRetry = { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 };

/** Rejects with CR_ERR_TRANSPORT_REDIRECT naming the status and the trap's origin, never its path. */
async function assertRefused(promise: Promise<unknown>, status: number, origin: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CognigyResetError, String(err));
    assert.equal(err.code, 'CR_ERR_TRANSPORT_REDIRECT', err.message);
    assert.match(err.message, new RegExp(`answered ${status}, a redirect to ${origin}:`));
    assert.doesNotMatch(err.message, /LOCATION-SECRET|steal/);
    return true;
  });
}

describe('redirects: credentials go only to the origin the user named', () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`REST client with X-API-Key: a ${status} to another host fails, and that host sees nothing`, async () => {
      const sink = await trap();
      const hop = await redirector(status, `${sink.origin}/steal?sig=LOCATION-SECRET`);
      try {
        const client = new CognigyRestClient({
          apiUrl: hop.origin,
          apiKey: KEY,
          ratePerSec: 0,
          retry: noRetry,
        });
        await assertRefused(client.resetState(target), status, sink.origin);
        assert.equal(hop.hits, 1);
        assert.deepEqual(sink.seen, []);
      } finally {
        hop.close();
        sink.close();
      }
    });
  }

  it('REST client with an OAuth2 bearer token: a 307 to another host fails, and that host sees nothing', async () => {
    const sink = await trap();
    const hop = await redirector(307, `${sink.origin}/steal`);
    try {
      const tokens = new OAuth2TokenProvider({
        tokenUrl: `${emu.httpUrl}/auth/oauth2/token`,
        clientId: 'c',
        clientSecret: CLIENT_SECRET,
        initialToken: TOKEN,
      });
      const client = new CognigyRestClient({ apiUrl: hop.origin, tokens, ratePerSec: 0, retry: noRetry });
      await assertRefused(client.resetState(target), 307, sink.origin);
      assert.deepEqual(sink.seen, []);
    } finally {
      hop.close();
      sink.close();
    }
  });

  for (const status of [307, 308, 302]) {
    it(`OAuth2 token request: a ${status} never carries client_secret or refresh_token to another host`, async () => {
      const sink = await trap();
      const hop = await redirector(status, `${sink.origin}/auth/oauth2/token?sig=LOCATION-SECRET`);
      try {
        const provider = new OAuth2TokenProvider({
          tokenUrl: `${hop.origin}/auth/oauth2/token`,
          clientId: 'c',
          clientSecret: CLIENT_SECRET,
          refreshToken: REFRESH,
        });
        await assertRefused(provider.get(), status, sink.origin);
        assert.deepEqual(sink.seen, []);
      } finally {
        hop.close();
        sink.close();
      }
    });
  }

  it('the CLI over REST stops at the first redirect (exit 2, fatal CR_ERR_TRANSPORT_REDIRECT), sending nothing on', async () => {
    const sink = await trap();
    const hop = await redirector(308, `${sink.origin}/steal?sig=LOCATION-SECRET`);
    try {
      const csv = join(dir, 'rest.csv');
      writeFileSync(
        csv,
        'sessionId,userId,flowReferenceId,entrypoint\n' +
          Array.from({ length: 5 }, (_, i) => `s-${i},u-${i},f,e`).join('\n') +
          '\n',
      );
      const result = await runCli(
        ['reset', '--transport', 'cognigy-rest', '--api-url', hop.origin, '--from-file', csv, '--json'],
        { COGNIGY_API_KEY: KEY, COGNIGY_RESET_STATE: join(dir, 'rest.sqlite') },
      );
      assert.equal(result.code, 2, result.stderr);
      const { summary } = parseJsonLines(result.stdout);
      assert.equal(summary!['fatal'].code, 'CR_ERR_TRANSPORT_REDIRECT');
      assert.match(result.stderr, new RegExp(`a redirect to ${sink.origin}:`));
      assert.deepEqual(sink.seen, []);
      assert.ok(!(result.stdout + result.stderr).includes('LOCATION-SECRET'));
    } finally {
      hop.close();
      sink.close();
    }
  });

  it('the runtime WebSocket dial: a 307 at the handshake fails with CR_ERR_TRANSPORT_REDIRECT (exit 2), the token not sent on', async () => {
    const sink = await trap();
    const hop = await redirector(307, `${sink.origin.replace('http', 'ws')}/ws/v1?sig=LOCATION-SECRET`);
    try {
      const result = await runCli(
        ['reset', 'session-1', '--json', '--url', hop.origin.replace('http', 'ws')],
        {
          COGNIGY_TENANT_ID: 't',
          COGNIGY_BOT_ID: 'b',
          COGNIGY_API_TOKEN: KEY,
          COGNIGY_RESET_STATE: join(dir, 'ws.sqlite'),
        },
      );
      assert.equal(result.code, 2, result.stderr);
      const { sessions } = parseJsonLines(result.stdout);
      assert.equal(sessions[0]!['error'].code, 'CR_ERR_TRANSPORT_REDIRECT');
      assert.equal(hop.hits, 1, 'refused at once, not retried');
      assert.deepEqual(sink.seen, []);
    } finally {
      hop.close();
      sink.close();
    }
  });

  it('the Socket endpoint: a 307 at the handshake is not followed, and the URLToken stays home', async () => {
    const sink = await trap();
    const hop = await redirector(307, `${sink.origin}/socket.io/?sig=LOCATION-SECRET`);
    try {
      const csv = join(dir, 'socket.csv');
      writeFileSync(csv, 'sessionId,userId\ns-1,u-1\n');
      const result = await runCli(
        [
          'reset',
          '--transport',
          'cognigy-socket',
          '--endpoint-url',
          `${hop.origin}/URLTOKEN-SECRET-5`,
          '--from-file',
          csv,
          '--json',
          '--max-attempts',
          '1',
          '--job',
          'sock',
        ],
        { COGNIGY_URL_TOKEN: 'URLTOKEN-SECRET-5', COGNIGY_RESET_STATE: join(dir, 'socket.sqlite') },
      );
      assert.equal(result.code, 1, result.stderr);
      const { sessions } = parseJsonLines(result.stdout);
      assert.equal(sessions[0]!['error'].code, 'CR_ERR_TRANSPORT_SOCKET_CONNECT');
      assert.deepEqual(sink.seen, []);
      assert.ok(!(result.stdout + result.stderr).includes('URLTOKEN-SECRET-5'));
      assert.ok(
        !readFileSync(join(dir, 'socket.sqlite')).toString('latin1').includes('URLTOKEN-SECRET-5'),
        'the job settings keep the endpoint origin only',
      );
    } finally {
      hop.close();
      sink.close();
    }
  });

  it('the webhook sink: a redirect stops delivery, names where it led (origin only), and the tracker token stays home', async () => {
    const sink = await trap();
    const hop = await redirector(307, `${sink.origin}/hook?sig=LOCATION-SECRET`);
    try {
      const result = await runCli(
        ['reset', 'session-2', '--json', '--analytics-url', `${hop.origin}/hook`, '--analytics-timeout', '5'],
        {
          COGNIGY_WS_URL: emu.wsUrl,
          COGNIGY_TENANT_ID: 't',
          COGNIGY_BOT_ID: 'b',
          COGNIGY_API_TOKEN: TOKEN,
          COGNIGY_ANALYTICS_TOKEN: 'tracker-SECRET-0f0f',
          COGNIGY_RESET_STATE: join(dir, 'hook.sqlite'),
        },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, new RegExp(`HTTP 307 redirect to ${sink.origin}, not followed`));
      assert.deepEqual(sink.seen, []);
      assert.ok(!(result.stdout + result.stderr).includes('LOCATION-SECRET'));
    } finally {
      hop.close();
      sink.close();
    }
  });
});

describe('secrets in URLs: every query value is redacted unless known safe', () => {
  it('redactUrl keeps tenant and botId and hides every other value, userinfo and the fragment', () => {
    const cases: [string, string][] = [
      ['wss://h/ws/v1?tenant=t1&botId=b1&sig=S1', 'wss://h/ws/v1?tenant=t1&botId=b1&sig=[REDACTED]'],
      ['https://h/api?key=S2&X-Amz-Signature=S3', 'https://h/api?key=[REDACTED]&X-Amz-Signature=[REDACTED]'],
      ['https://h/hook?S4', 'https://h/hook?[REDACTED]'],
      ['https://u:S5@h:8443/x', 'https://[REDACTED]@h:8443/x'],
      ['https://S6@h/x', 'https://[REDACTED]@h/x'],
      ['https://h/cb#access_token=S7', 'https://h/cb#[REDACTED]'],
      ['https://h/?Tenant=S8', 'https://h/?Tenant=[REDACTED]'],
    ];
    for (const [url, shown] of cases) assert.equal(redactUrl(url), shown, url);
    assert.equal(redactUrl('https://h/URLTOKEN-S9?x=1', { path: false }), 'https://h');
  });

  it('a run keeps query secrets of --url out of stdout, logs and the state file (job settings)', async () => {
    const state = join(dir, 'job.sqlite');
    const url = `${emu.wsUrl}?sig=SIG-SECRET-1&apikey2=KEY-SECRET-2&SECRET-NAME-3`;
    const result = await runCli(
      ['reset', 'session-3', '--json', '--url', url, '--job', 'j1', '--log-level', 'debug', '--state', state],
      { COGNIGY_TENANT_ID: 't', COGNIGY_BOT_ID: 'b', COGNIGY_API_TOKEN: TOKEN },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /sig=\[REDACTED\]/, 'the URL is logged, redacted');
    const stored = readFileSync(state).toString('latin1');
    for (const secret of ['SIG-SECRET-1', 'KEY-SECRET-2', 'SECRET-NAME-3']) {
      assert.ok(!result.stdout.includes(secret), `stdout shows ${secret}`);
      assert.ok(!result.stderr.includes(secret), `stderr shows ${secret}`);
      assert.ok(!stored.includes(secret), `the state file holds ${secret}`);
    }
  });

  const malformed: [string, string, string][] = [
    ['--url', 'wss://api.example.com:99999/ws/v1?sig=MAL-SECRET-1', 'a bad port, a secret query'],
    ['--url', 'wss://user:MAL-SECRET-2@exa mple.com/ws/v1', 'a bad host, a secret userinfo'],
    ['--api-url', 'https://[::1/new?key=MAL-SECRET-3', 'a bad IPv6 host, a secret query'],
  ];
  for (const [option, value, what] of malformed) {
    it(`a malformed ${option} (${what}) is refused (exit 2) without echoing any of it`, async () => {
      const args =
        option === '--url'
          ? ['reset', 'session-1', '--url', value]
          : ['reset', '--transport', 'cognigy-rest', '--api-url', value, '--from-file', '-'];
      const result = await runCli(args, {
        COGNIGY_TENANT_ID: 't',
        COGNIGY_BOT_ID: 'b',
        COGNIGY_API_TOKEN: TOKEN,
        COGNIGY_API_KEY: KEY,
        COGNIGY_RESET_STATE: join(dir, 'mal.sqlite'),
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`CR_ERR_OPT_INVALID: Expected ${option} to be a URL`));
      assert.ok(!result.stderr.includes('MAL-SECRET'), result.stderr);
    });
  }

  it('a malformed COGNIGY_OAUTH_TOKEN_URL is refused without echoing the client secret it holds', async () => {
    const result = await runCli(['reset', 'session-1', '--url', emu.wsUrl], {
      COGNIGY_TENANT_ID: 't',
      COGNIGY_BOT_ID: 'b',
      COGNIGY_OAUTH_TOKEN_URL: `https://id:${CLIENT_SECRET}@exa mple.com/token`,
      COGNIGY_OAUTH_CLIENT_ID: 'id',
      COGNIGY_OAUTH_CLIENT_SECRET: CLIENT_SECRET,
      COGNIGY_RESET_STATE: join(dir, 'oauth.sqlite'),
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stdout + result.stderr, /COGNIGY_OAUTH_TOKEN_URL to be a URL/);
    assert.ok(!(result.stdout + result.stderr).includes(CLIENT_SECRET), result.stderr);
  });
});

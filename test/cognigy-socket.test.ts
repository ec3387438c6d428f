/**
 * The Cognigy Socket transport against the endpoint shapes a real tenant may have: before 4.79 (no
 * endpoint-ready), older ones (finalPing as an output), and on-prem endpoints with a path prefix.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Emulator, type EmulatorOptions, startEmulator } from '../src/emulator/index.js';
import { createResetter } from '../src/reset/resetter.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { socketEndpoint } from '../src/transports/cognigy-socket/endpoint-url.js';
import {
  CognigySocketTransport,
  type SocketTransportOptions,
} from '../src/transports/cognigy-socket/transport.js';

const URL_TOKEN = 'url-token-SOCKET-3c4d';

async function withEmulator(options: EmulatorOptions, body: (emu: Emulator) => Promise<void>): Promise<void> {
  const emu = await startEmulator({ sessions: 10, urlToken: URL_TOKEN, ...options });
  try {
    await body(emu);
  } finally {
    await emu.close();
  }
}

/** Resets seeded sessions through the transport; returns their outcomes. */
async function resetThrough(emu: Emulator, options: Partial<SocketTransportOptions>, ks: number[]) {
  const resetter = createResetter({
    transport: new CognigySocketTransport({
      endpointUrl: emu.httpUrl,
      urlToken: URL_TOKEN,
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 },
      ...options,
    }),
    ackTimeoutMs: 10_000,
  });
  try {
    const outcomes = [];
    for (const k of ks)
      outcomes.push(await resetter.pipeline.reset({ sessionId: `session-${k}`, userId: `user-${k}` }));
    return outcomes;
  } finally {
    await resetter.close();
  }
}

describe('the Cognigy Socket transport against older and on-prem endpoints', () => {
  it('goes on after a short wait when the endpoint never sends endpoint-ready (Cognigy.AI before 4.79)', async () => {
    await withEmulator({ endpointReady: false }, async (emu) => {
      const [o] = await resetThrough(emu, { readyWaitMs: 200 }, [1]);
      assert.deepEqual([o!.outcome, o!.error, o!.attempts], ['reset', null, 1]);
      assert.equal(emu.store.get('session-1')!.flowState, 'RESET');
      assert.equal(emu.stats().socket['processInput'], 1);
    });
  });

  it("takes an output of type 'finalPing' as the end of the answer, as older endpoints send it", async () => {
    await withEmulator({ finalPingAsOutput: true }, async (emu) => {
      const [o] = await resetThrough(emu, {}, [2]);
      assert.deepEqual([o!.outcome, o!.error], ['reset', null]);
    });
  });

  it('connects at <prefix>/socket.io for an endpoint URL with a path prefix, leaving the URLToken out of it', async () => {
    await withEmulator({ socketPathPrefix: '/cognigy/endpoint' }, async (emu) => {
      const [o] = await resetThrough(
        emu,
        { endpointUrl: `${emu.httpUrl}/cognigy/endpoint/${URL_TOKEN}` },
        [3],
      );
      assert.deepEqual([o!.outcome, o!.error], ['reset', null]);
      assert.equal(emu.store.get('session-3')!.flowState, 'RESET');
    });
  });

  it('builds the Socket.IO path as the official client does', () => {
    const cases: [string, string, string][] = [
      [`https://endpoint-trial.cognigy.ai/${URL_TOKEN}`, '/socket.io', 'https://endpoint-trial.cognigy.ai'],
      ['https://endpoint-trial.cognigy.ai', '/socket.io', 'https://endpoint-trial.cognigy.ai'],
      [
        `https://bots.example.com/cognigy/${URL_TOKEN}/`,
        '/cognigy/socket.io',
        'https://bots.example.com/cognigy',
      ],
      ['https://bots.example.com/cognigy', '/cognigy/socket.io', 'https://bots.example.com/cognigy'],
      [`wss://bots.example.com:8443/a/b/${URL_TOKEN}`, '/a/b/socket.io', 'https://bots.example.com:8443/a/b'],
    ];
    for (const [url, path, where] of cases) {
      const endpoint = socketEndpoint(new URL(url), URL_TOKEN);
      assert.deepEqual([endpoint.path, endpoint.where], [path, where], url);
    }
  });
});

/**
 * Contract tests: Cognigy's own clients (devDependencies only: their licence forbids redistribution)
 * against the emulator, so the emulator behaves as real tenants do for the clients Cognigy ships — and
 * our transports are tested against that same emulator.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCollection, RestAPIClient } from '@cognigy/rest-api-client';
import { SocketClient } from '@cognigy/socket-client';
import { io } from 'socket.io-client';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { withDeadline } from './helpers/ws.js';

let emu: Emulator;
before(async () => {
  emu = await startEmulator({ sessions: 50 });
  emu.store.create({ sessionId: 'busy', userId: 'user-busy', stuck: true });
  emu.store.create({ sessionId: 'odd id/ü?&=x', userId: 'user ü/&' });
});
after(() => emu.close());

const seeded = (k: number) => ({
  sessionId: `session-${k}`,
  userId: `user-${k}`,
  flowReferenceId: `7c0e5a4e-0000-4000-8000-${k.toString(16).padStart(12, '0')}`,
  entrypoint: '5f1e2d3c4b5a69788796a5b4',
});

describe('@cognigy/rest-api-client against the emulator', () => {
  const api = (): ReturnType<typeof RestAPIClient> => {
    const client = new RestAPIClient({ baseUrl: emu.httpUrl, maxRetries: 0 });
    client.setCredentials({ type: 'ApiKey', apiKey: 'dev-token' });
    return client;
  };

  it('resetContext, resetState and injectContext work and change the shared session', async () => {
    const client = api();
    const t = seeded(1);
    // The client's own body type spells the field `entrypoint`; the emulator accepts no other spelling.
    const context = await client.resetContext(t);
    const flowDefault = emu.store.flowDefault(t.flowReferenceId);
    assert.notDeepEqual(flowDefault, {});
    assert.deepEqual(context, flowDefault);
    await client.resetState({ sessionId: t.sessionId, userId: t.userId });
    assert.equal(emu.store.get(t.sessionId)!.nluContext, null);
    const injected = await client.injectContext({
      sessionId: t.sessionId,
      userId: t.userId,
      context: { tier: 'gold' },
    });
    assert.equal((injected as Record<string, unknown>)['tier'], 'gold');
    assert.deepEqual(emu.store.get(t.sessionId)!.variables, { ...flowDefault, tier: 'gold' });
  });

  it('raises its NotFoundError (1002) for an unknown session', async () => {
    await assert.rejects(api().resetState({ sessionId: 'ghost', userId: 'nobody' }), ErrorCollection[1002]);
  });

  it('raises its ConflictError (1004) for a session whose Flow execution does not end', async () => {
    await assert.rejects(api().resetState({ sessionId: 'busy', userId: 'user-busy' }), ErrorCollection[1004]);
  });
});

describe('@cognigy/socket-client@4.9.2 against the emulator (Engine.IO v3)', () => {
  it('connects, sends a message with resetFlow, and receives output and finalPing', async () => {
    const client = new SocketClient(emu.httpUrl, 'dev-url-token', {
      // Characters that need encoding: the query arrives encoded twice and must be decoded once more.
      sessionId: 'odd id/ü?&=x',
      userId: 'user ü/&',
      forceWebsockets: true,
      reconnection: false,
      resetFlow: true,
    });
    const errors: unknown[] = [];
    client.on('error', (e: unknown) => errors.push(e));
    client.on('exception', (e: unknown) => errors.push(e));
    await withDeadline(client.connect(), 10_000, 'endpoint-ready');
    const outputs: unknown[] = [];
    client.on('output', (o: unknown) => outputs.push(o));
    const finalPing = withDeadline(
      new Promise((resolve) => client.once('finalPing', resolve)),
      10_000,
      'finalPing',
    );
    client.sendMessage('hello again');
    assert.deepEqual(await finalPing, { type: 'regular' });
    assert.equal(outputs.length, 1);
    assert.deepEqual(errors, []);
    assert.equal(emu.store.get('odd id/ü?&=x')!.flowState, 'RESET');
    client.disconnect();
  });
});

describe('@cognigy/socket-client@4.9.2 against an endpoint with a path prefix (on-prem)', () => {
  it('connects at <prefix>/socket.io, as the client builds the path from the endpoint URL', async () => {
    const onPrem = await startEmulator({ sessions: 3, socketPathPrefix: '/cognigy/endpoint' });
    try {
      const client = new SocketClient(`${onPrem.httpUrl}/cognigy/endpoint`, 'dev-url-token', {
        sessionId: 'session-1',
        userId: 'user-1',
        forceWebsockets: true,
        reconnection: false,
        resetFlow: true,
      });
      await withDeadline(client.connect(), 10_000, 'endpoint-ready');
      const finalPing = withDeadline(
        new Promise((resolve) => client.once('finalPing', resolve)),
        10_000,
        'finalPing',
      );
      client.sendMessage('');
      await finalPing;
      assert.equal(onPrem.store.get('session-1')!.flowState, 'RESET');
      client.disconnect();
    } finally {
      await onPrem.close();
    }
  });
});

describe('@cognigy/socket-client@4.9.2 against an older endpoint (--legacy-final-ping)', () => {
  it("reads the emulator's output of type finalPing as its finalPing", async () => {
    const legacy = await startEmulator({ sessions: 3, finalPingAsOutput: true });
    try {
      const client = new SocketClient(legacy.httpUrl, 'dev-url-token', {
        sessionId: 'session-2',
        userId: 'user-2',
        forceWebsockets: true,
        reconnection: false,
        resetFlow: true,
      });
      await withDeadline(client.connect(), 10_000, 'endpoint-ready');
      const finalPing = withDeadline(
        new Promise((resolve) => client.once('finalPing', resolve)),
        10_000,
        'finalPing',
      );
      client.sendMessage('');
      assert.deepEqual(await finalPing, { type: 'regular' });
      client.disconnect();
    } finally {
      await legacy.close();
    }
  });
});

describe('socket.io-client@4 (Engine.IO v4) against the emulator', () => {
  it('connects, gets endpoint-ready, sends processInput with resetFlow, and receives output and finalPing', async () => {
    const socket = io(emu.httpUrl, {
      path: '/socket.io',
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      // Encoded once here, and once more on the wire: the endpoint decodes twice.
      query: {
        sessionId: encodeURIComponent('session-7'),
        urlToken: encodeURIComponent('dev-url-token'),
        userId: encodeURIComponent('user-7'),
        testMode: 'false',
        emitWithAck: 'false',
      },
    });
    try {
      const outputs: unknown[] = [];
      socket.on('output', (o: unknown) => outputs.push(o));
      await withDeadline(
        new Promise((resolve) => socket.once('endpoint-ready', resolve)),
        10_000,
        'endpoint-ready',
      );
      assert.equal(socket.io.engine.transport.name, 'websocket');
      const finalPing = withDeadline(
        new Promise((resolve) => socket.once('finalPing', resolve)),
        10_000,
        'finalPing',
      );
      socket.emit('processInput', {
        URLToken: 'dev-url-token',
        userId: 'user-7',
        sessionId: 'session-7',
        channel: 'contract-test',
        source: 'device',
        resetFlow: true,
        text: 'hello',
      });
      assert.deepEqual(await finalPing, { type: 'regular' });
      assert.deepEqual(
        outputs.map((o) => (o as { type: string }).type),
        ['output'],
      );
      assert.equal(emu.store.get('session-7')!.flowState, 'RESET');
    } finally {
      socket.disconnect();
    }
  });
});

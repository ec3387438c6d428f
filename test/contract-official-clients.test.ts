/**
 * Contract tests: Cognigy's own clients (devDependencies only: their licence forbids redistribution)
 * against the emulator, so the emulator behaves as real tenants do for the clients Cognigy ships — and
 * our transports are tested against that same emulator.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCollection, RestAPIClient } from '@cognigy/rest-api-client';
import { SocketClient } from '@cognigy/socket-client';
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
    const context = await client.resetContext(t);
    assert.deepEqual(context, {});
    await client.resetState({ sessionId: t.sessionId, userId: t.userId });
    assert.equal(emu.store.get(t.sessionId)!.nluContext, null);
    const injected = await client.injectContext({
      sessionId: t.sessionId,
      userId: t.userId,
      context: { tier: 'gold' },
    });
    assert.equal((injected as Record<string, unknown>)['tier'], 'gold');
    assert.deepEqual(emu.store.get(t.sessionId)!.variables, { tier: 'gold' });
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

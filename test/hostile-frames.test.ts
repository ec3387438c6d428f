/**
 * Frames from an engine are bounded (issue 14 §3): a runtime WebSocket answer or a Socket.IO frame past
 * its bound fails the session with its own code, without the client buffering what it sends, and the
 * sessions around it are reset.
 */
import * as assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Server } from 'socket.io';
import { createResetter } from '../src/reset/resetter.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { SOCKET_FRAME_MAX } from '../src/transports/cognigy-socket/answer-errors.js';
import { CognigySocketTransport } from '../src/transports/cognigy-socket/transport.js';
import { parseJsonLines, runCli } from './helpers/cli.js';
import { hostileEnv, startHostileEngine } from './helpers/hostile-engine.js';

/** A Socket.IO endpoint that answers every connection with one `output` of `size` characters. */
async function bigFrames(size: number, when: 'connect' | 'processInput') {
  const http = createServer();
  const io = new Server(http, { maxHttpBufferSize: 1e8 });
  io.on('connection', (socket) => {
    const flood = (): void => void socket.emit('output', { type: 'text', data: { text: 'y'.repeat(size) } });
    if (when === 'connect') flood();
    else socket.on('processInput', flood);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => void io.close(() => resolve())),
  };
}

async function resetOnce(url: string) {
  const resetter = createResetter({
    transport: new CognigySocketTransport({
      endpointUrl: url,
      urlToken: 'frames-token',
      allowInsecure: true,
      readyWaitMs: 50,
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 3 },
    }),
    ackTimeoutMs: 20_000,
  });
  try {
    return await resetter.pipeline.reset({ sessionId: 'session-1', userId: 'user-1' });
  } finally {
    await resetter.close();
  }
}

describe('the Cognigy Socket transport bounds the frames an endpoint sends', () => {
  for (const when of ['connect', 'processInput'] as const) {
    it(`fails the session with CR_ERR_TRANSPORT_SOCKET_TOO_BIG on a frame past the bound (on ${when})`, async (t) => {
      const endpoint = await bigFrames(SOCKET_FRAME_MAX + 1024, when);
      t.after(() => endpoint.close());
      const outcome = await resetOnce(endpoint.url);
      assert.equal(outcome.outcome, 'failed');
      assert.equal(outcome.error?.code, 'CR_ERR_TRANSPORT_SOCKET_TOO_BIG');
      assert.equal(outcome.attempts, 1, 'not retried');
    });
  }
});

describe('the runtime WebSocket transport bounds the answers an engine sends', () => {
  it('fails the session answered with a frame past 1 MiB with CR_ERR_TRANSPORT_TOO_BIG, and resets the others', async (t) => {
    const engine = await startHostileEngine({ 's-2': 'huge-answer' });
    t.after(() => engine.close());
    const result = await runCli(
      ['reset', 's-1', 's-2', 's-3', '--json', '--no-audit', '--no-progress', '--concurrency', '1'],
      hostileEnv(engine),
    );
    assert.equal(result.code, 1, result.stderr);
    const byId = new Map(parseJsonLines(result.stdout).sessions.map((s) => [s['sessionId'], s]));
    assert.equal(byId.get('s-2')?.['error']?.code, 'CR_ERR_TRANSPORT_TOO_BIG');
    assert.equal(byId.get('s-2')?.['attempts'], 1, 'not retried');
    for (const id of ['s-1', 's-3']) assert.equal(byId.get(id)?.['outcome'], 'reset', id);
    assert.equal(engine.applied.get('s-2'), undefined);
  });
});

/**
 * A hostile runtime engine for tests and loops: it speaks the seed's bare shapes only (no requestId echo,
 * no sessionId), answers in order, and misbehaves for the sessions it is told to: it closes the
 * connection with a code, answers garbage, never answers, or does not know the session. It counts the
 * SENDs each session received, so a test can tell a double reset from a retry that was never applied.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export type Misbehaviour =
  /** Closes with 1008 "invalid directive" when this session's SEND arrives (nothing applied). */
  | 'close-1008'
  /** Closes with 1011 (an engine error on this session; nothing applied). */
  | 'close-1011'
  /** Closes with 1009, as if this session's frame were too big (nothing applied). */
  | 'close-1009'
  /** Closes with 1008 saying the token lacks session:manage. */
  | 'close-scope'
  /** Answers the SEND with text that is not JSON. */
  | 'garbage'
  /** Never answers this SEND, nor anything after it on that connection. */
  | 'silent'
  /** Answers SESSION_NOT_FOUND. */
  | 'not-found'
  /** Answers the SEND with a frame of 2 MiB (nothing applied). */
  | 'huge-answer';

export interface HostileEngine {
  wsUrl: string;
  /** SENDs received per session, and how many of them were applied. */
  sends: Map<string, number>;
  applied: Map<string, number>;
  /** Every close the engine made, in order: the session that caused it and the code. */
  closes: { sessionId: string; code: number }[];
  close(): Promise<void>;
}

export async function startHostileEngine(
  misbehaviour: Record<string, Misbehaviour>,
  options: { once?: boolean } = {},
): Promise<HostileEngine> {
  const sends = new Map<string, number>();
  const applied = new Map<string, number>();
  const closes: { sessionId: string; code: number }[] = [];
  // With `once`, a misbehaving session misbehaves on its first SEND only.
  const spent = new Set<string>();
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('cognigy-runtime-v1') ? 'cognigy-runtime-v1' : false),
  });
  const sockets = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', () => undefined);
    let silent = false;
    let closing = false;
    ws.on('message', (data) => {
      if (silent || closing) return;
      const frame = JSON.parse((data as Buffer).toString('utf8')) as { type: string; sessionId: string };
      const id = frame.sessionId;
      let what: Misbehaviour | undefined = misbehaviour[id];
      if (what !== undefined && options.once === true && spent.has(`${frame.type}:${id}`)) what = undefined;
      if (frame.type === 'SEND') {
        sends.set(id, (sends.get(id) ?? 0) + 1);
        if (what !== undefined) spent.add(`SEND:${id}`);
        const code =
          what === 'close-1011'
            ? 1011
            : what === 'close-1009'
              ? 1009
              : what?.startsWith('close-') === true
                ? 1008
                : 0;
        if (code !== 0) {
          closing = true;
          closes.push({ sessionId: id, code });
          ws.close(
            code,
            what === 'close-scope'
              ? 'token lacks session:manage'
              : code === 1011
                ? 'engine error'
                : code === 1009
                  ? 'frame too big'
                  : 'invalid directive',
          );
          return;
        }
        if (what === 'silent') {
          silent = true;
          return;
        }
        if (what === 'garbage') {
          ws.send('{"status": RESET_COMPLETE');
          return;
        }
        if (what === 'not-found') {
          ws.send(JSON.stringify({ status: 'SESSION_NOT_FOUND' }));
          return;
        }
        if (what === 'huge-answer') {
          ws.send(JSON.stringify({ status: 'RESET_COMPLETE', padding: 'x'.repeat(2 * 1024 * 1024) }));
          return;
        }
        applied.set(id, (applied.get(id) ?? 0) + 1);
        ws.send(JSON.stringify({ status: 'RESET_COMPLETE' }));
        return;
      }
      if (what === 'not-found' || !applied.has(id)) {
        ws.send(
          JSON.stringify(
            what === 'not-found'
              ? { status: 'SESSION_NOT_FOUND' }
              : { flowState: 'ACTIVE', variables: { k: 1 } },
          ),
        );
        return;
      }
      ws.send(JSON.stringify({ flowState: 'RESET', variables: {} }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    wsUrl: `ws://127.0.0.1:${port}/ws/v1`,
    sends,
    applied,
    closes,
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The environment a CLI run against `engine` needs. */
export function hostileEnv(engine: { wsUrl: string }): Record<string, string> {
  return {
    COGNIGY_WS_URL: engine.wsUrl,
    COGNIGY_TENANT_ID: 'tenant-1',
    COGNIGY_BOT_ID: 'bot-1',
    COGNIGY_API_TOKEN: 'hostile-token',
  };
}

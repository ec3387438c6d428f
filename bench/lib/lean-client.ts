/**
 * The leanest pipelined client: pre-built frames, no validation, a window of requests in flight on each
 * connection, answers matched by order. A reset counts once both its SEND and its QUERY are answered.
 */
import { WebSocket } from 'ws';

export interface LeanResult {
  resets: number;
  verified: number;
  ms: number;
}

export async function leanRun(opts: {
  wsUrl: string;
  ids: string[];
  connections?: number;
  window?: number;
}): Promise<LeanResult> {
  const connections = opts.connections ?? 4;
  const window = opts.window ?? 64;
  const url = `${opts.wsUrl}?tenant=bench&botId=bench&token=dev-token`;
  const timestamp = new Date().toISOString();
  const frames = opts.ids.map((id) => {
    const sid = JSON.stringify(id);
    return [
      `{"type":"SEND","sessionId":${sid},"stateClearMatrix":{"flowState":"RESET","dialogState":"COLD","engineState":"INITIALIZED"},"contextWipeDirective":{"clearVariables":true,"clearHistory":true,"clearNLUContext":true},"maxDurationSec":900,"timestamp":"${timestamp}"}`,
      `{"type":"QUERY","sessionId":${sid},"request":"STATE_CHECK"}`,
    ] as const;
  });
  const sockets = await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url, 'cognigy-runtime-v1', { perMessageDeflate: false });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
  let next = 0;
  let verified = 0;
  let resets = 0;
  const started = performance.now();
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve, reject) => {
          // Per connection: whether each reset in flight was acknowledged, in order.
          let inFlight = 0;
          const pendingAck: boolean[] = [];
          let answers = 0;
          const pump = (): void => {
            while (inFlight < window && next < frames.length) {
              const [send, query] = frames[next++]!;
              ws.send(send);
              ws.send(query);
              inFlight++;
            }
            if (inFlight === 0) resolve();
          };
          ws.on('message', (data) => {
            const text = (data as Buffer).toString();
            answers++;
            if (answers % 2 === 1) {
              pendingAck.push(text.includes('RESET_COMPLETE'));
              return;
            }
            const acked = pendingAck.shift() ?? false;
            if (acked && text.includes('"flowState":"RESET"')) verified++;
            resets++;
            inFlight--;
            pump();
          });
          ws.once('close', () => (inFlight > 0 ? reject(new Error('connection closed mid-run')) : resolve()));
          pump();
        }),
    ),
  );
  const ms = performance.now() - started;
  for (const ws of sockets) ws.close();
  return { resets, verified, ms };
}

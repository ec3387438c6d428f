/**
 * A lean engine: a bare `ws` server that answers the seed's bare shapes and nothing else (every SEND
 * applied, every QUERY reset and empty), in request order. What a client is measured against when the
 * emulator's own work would hide the client's. Prints one "listening" JSON line.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const APPLIED = '{"status":"RESET_COMPLETE"}';
const CLEAN = '{"flowState":"RESET","variables":{}}';

const server = createServer();
const wss = new WebSocketServer({
  server,
  perMessageDeflate: false,
  handleProtocols: (p) => [...p][0] ?? false,
});
wss.on('connection', (ws) =>
  ws.on('message', (data) => {
    // The frame's type is all that matters: `"type":"SEND"` sits at its start, as every client sends it.
    ws.send((data as Buffer).includes('"SEND"') ? APPLIED : CLEAN);
  }),
);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', wsUrl: `ws://127.0.0.1:${address.port}/ws/v1` })}\n`,
  );
});
process.once('SIGTERM', () => {
  for (const client of wss.clients) client.terminate();
  wss.close();
  server.close();
});

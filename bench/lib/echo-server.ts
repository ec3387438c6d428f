/** A bare ws echo server: the floor any engine is measured against. Prints one "listening" JSON line. */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const server = createServer();
const wss = new WebSocketServer({
  server,
  perMessageDeflate: false,
  handleProtocols: (p) => [...p][0] ?? false,
});
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', wsUrl: `ws://127.0.0.1:${address.port}/ws/v1` })}\n`,
  );
});
process.once('SIGTERM', () => {
  for (const client of wss.clients) client.terminate();
  server.close(() => process.exit(0));
});

/**
 * The status latency's floor on this machine: a bare `node:http` server in a process of its own that
 * answers every request with one fixed JSON body, at once, doing nothing else. Polled alongside a
 * service's status route, it shows how long a request waits for a process that has no work at all to be
 * scheduled while the benchmark's other processes take the cores. Prints `{"event":"listening","url"}`.
 *
 *   node dist/bench/lib/floor-server.js
 */
import { createServer } from 'node:http';

const body = JSON.stringify({
  state: 'running',
  counts: { total: 100_000, verified: 0 },
  pad: 'x'.repeat(800),
});
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

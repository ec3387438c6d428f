/**
 * Checks, against a real Cognigy.AI tenant, each fact docs/cognigy.md lists as unconfirmed. Never run by
 * the tests. Prints one line a check: `PASS`, `FAIL` (the tenant contradicts what the transports assume),
 * `INFO` (what the tenant answered, where either answer is fine) or `SKIP` (not configured).
 *
 *   npm run build && node dist/scripts/check-tenant.js
 *
 * REST (resets the context of the test session(s) named: use a test conversation, never a customer's):
 *   COGNIGY_API_URL, COGNIGY_API_KEY, CHECK_SESSION_ID, CHECK_USER_ID, CHECK_FLOW_REFERENCE_ID,
 *   CHECK_ENTRYPOINT, and optionally CHECK_SESSION_ID_2 + CHECK_USER_ID_2 (another session of that Flow).
 * Socket (starts new conversations with random sessionIds, which the tenant records as conversations):
 *   COGNIGY_ENDPOINT_URL, COGNIGY_URL_TOKEN.
 * The key and the URLToken are never printed.
 */
import { randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';
import { socketEndpoint } from '../src/transports/cognigy-socket/endpoint-url.js';

type Verdict = 'PASS' | 'FAIL' | 'INFO' | 'SKIP';
let failures = 0;
function report(verdict: Verdict, id: string, detail: string): void {
  if (verdict === 'FAIL') failures++;
  process.stdout.write(`${verdict.padEnd(4)} ${id}: ${detail}\n`);
}

const env = (name: string): string | undefined => {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
};

interface Answer {
  status: number;
  body: unknown;
}

async function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<Answer> {
  const res = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // kept as text
  }
  return { status: res.status, body: parsed };
}

const keysOf = (v: unknown): string =>
  v !== null && typeof v === 'object' ? `{${Object.keys(v).sort().join(', ')}}` : typeof v;
const same = (a: unknown, b: unknown): boolean => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v)
      .sort(([x], [y]) => (x < y ? -1 : 1))
      .map(([k, x]) => [k, sortKeys(x)]),
  );
}

async function checkRest(): Promise<void> {
  const base = env('COGNIGY_API_URL');
  const key = env('COGNIGY_API_KEY');
  const sessionId = env('CHECK_SESSION_ID');
  const userId = env('CHECK_USER_ID');
  const flowReferenceId = env('CHECK_FLOW_REFERENCE_ID');
  const entrypoint = env('CHECK_ENTRYPOINT');
  if (!base || !key || !sessionId || !userId || !flowReferenceId || !entrypoint) {
    report(
      'SKIP',
      'rest',
      'set COGNIGY_API_URL, COGNIGY_API_KEY and CHECK_SESSION_ID, _USER_ID, _FLOW_REFERENCE_ID, _ENTRYPOINT',
    );
    return;
  }
  const auth = { 'x-api-key': key };
  const path = (id: string, op: string, prefix = '/new') =>
    `${prefix}/v2.0/sessions/${encodeURIComponent(id)}/${op}`;

  const first = await post(
    base,
    path(sessionId, 'context/reset'),
    { userId, flowReferenceId, entrypoint },
    auth,
  );
  const object = first.status === 200 && first.body !== null && typeof first.body === 'object';
  report(
    object ? 'PASS' : 'FAIL',
    'rest.entrypoint',
    `context/reset with \`entrypoint\` answered ${first.status} ${keysOf(first.body)}`,
  );

  const other = await post(
    base,
    path(sessionId, 'context/reset'),
    { userId, flowReferenceId, entryPoint: entrypoint },
    auth,
  );
  report(
    'INFO',
    'rest.entryPoint-only',
    `context/reset with only \`entryPoint\` answered ${other.status} ${keysOf(other.body)}`,
  );

  const again = await post(
    base,
    path(sessionId, 'context/reset'),
    { userId, flowReferenceId, entrypoint },
    auth,
  );
  report(
    again.status === 200 && same(again.body, first.body) ? 'PASS' : 'FAIL',
    'rest.default-context',
    `a second reset returned the same context (${keysOf(again.body)}): the answer is the Flow's default, not empty: ${keysOf(first.body) !== '{}'}`,
  );

  const sessionId2 = env('CHECK_SESSION_ID_2');
  const userId2 = env('CHECK_USER_ID_2');
  if (sessionId2 && userId2) {
    const second = await post(
      base,
      path(sessionId2, 'context/reset'),
      { userId: userId2, flowReferenceId, entrypoint },
      auth,
    );
    report(
      second.status === 200 && same(second.body, first.body) ? 'PASS' : 'FAIL',
      'rest.default-per-flow',
      `another session of the Flow got the same context after its reset (${second.status} ${keysOf(second.body)})`,
    );
  } else report('SKIP', 'rest.default-per-flow', 'set CHECK_SESSION_ID_2 and CHECK_USER_ID_2');

  const bare = await post(
    base,
    path(sessionId, 'context/reset', ''),
    { userId, flowReferenceId, entrypoint },
    auth,
  );
  report('INFO', 'rest.without-new', `the path without /new answered ${bare.status}`);

  const bearer = await post(
    base,
    path(sessionId, 'state/reset'),
    { userId },
    { authorization: `Bearer ${key}` },
  );
  report(
    bearer.status === 401 ? 'PASS' : 'FAIL',
    'rest.key-as-bearer',
    `an API key as Bearer answered ${bearer.status}`,
  );

  const ghost = await post(
    base,
    path(`check-${randomUUID()}`, 'context/reset'),
    { userId, flowReferenceId, entrypoint },
    auth,
  );
  const problem = ghost.body as { code?: unknown; traceId?: unknown } | undefined;
  report(
    ghost.status === 404 && problem?.code === 1002 ? 'PASS' : 'FAIL',
    'rest.unknown-session',
    `an unknown session answered ${ghost.status}, code ${String(problem?.code)}, traceId ${typeof problem?.traceId === 'string'}`,
  );
}

/** One Socket conversation with a new sessionId: what arrives, in order, until finalPing or 15 s. */
async function checkSocket(): Promise<void> {
  const endpointUrl = env('COGNIGY_ENDPOINT_URL');
  const urlToken = env('COGNIGY_URL_TOKEN');
  if (!endpointUrl || !urlToken) {
    report('SKIP', 'socket', 'set COGNIGY_ENDPOINT_URL and COGNIGY_URL_TOKEN');
    return;
  }
  const endpoint = socketEndpoint(new URL(endpointUrl), urlToken);
  const sessionId = `check-${randomUUID()}`;
  const socket = io(endpoint.origin, {
    path: endpoint.path,
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 15_000,
    query: {
      sessionId: encodeURIComponent(sessionId),
      urlToken: encodeURIComponent(urlToken),
      userId: encodeURIComponent('cognigy-reset-check'),
      testMode: 'false',
      emitWithAck: 'false',
    },
  });
  const events: string[] = [];
  const done = new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 15_000);
    socket.on('connect_error', (err: Error & { data?: unknown }) => {
      clearTimeout(timer);
      resolve(`connect_error ${JSON.stringify(err.data ?? err.message).slice(0, 100)}`);
    });
    socket.on('connect', () => {
      events.push('connect');
      // Sent after endpoint-ready, or after 3 s without it.
      const fallback = setTimeout(() => send('no endpoint-ready within 3 s'), 3000);
      socket.once('endpoint-ready', () => {
        clearTimeout(fallback);
        send('endpoint-ready');
      });
    });
    socket.on('output', (o: { type?: unknown }, ack?: () => void) => {
      ack?.();
      events.push(`output:${String(o?.type)}`);
      if (o?.type === 'finalPing') finish('finalPing as output');
    });
    socket.on('finalPing', (_p: unknown, ack?: () => void) => {
      ack?.();
      finish('finalPing event');
    });
    socket.on('exception', () => events.push('exception'));
    function finish(how: string): void {
      clearTimeout(timer);
      resolve(how);
    }
  });
  let sent = false;
  function send(why: string): void {
    if (sent) return;
    sent = true;
    events.push(why);
    socket.emit('processInput', {
      URLToken: urlToken,
      userId: 'cognigy-reset-check',
      sessionId,
      channel: 'cognigy-reset-check',
      source: 'device',
      resetFlow: true,
      text: '',
      data: { check: true },
    });
  }
  const how = await done;
  socket.disconnect();
  const connected = events.includes('connect');
  report(
    connected ? 'PASS' : 'FAIL',
    'socket.engine-io-v4',
    `socket.io-client@4 at ${endpoint.where} (path ${endpoint.path}): ${connected ? 'connected' : how}`,
  );
  if (!connected) return;
  report(
    'INFO',
    'socket.endpoint-ready',
    events.includes('endpoint-ready') ? 'sent (Cognigy.AI 4.79 or later)' : 'not sent within 3 s',
  );
  const ended = how.startsWith('finalPing');
  report(ended ? 'PASS' : 'FAIL', 'socket.final-ping', `the answer ended with: ${how}`);
  report(
    ended && !events.includes('output:error') ? 'PASS' : 'FAIL',
    'socket.new-session',
    `a new sessionId started a conversation without an error output (events: ${events.join(', ')})`,
  );
}

await checkRest().catch((err: unknown) => report('FAIL', 'rest', `stopped: ${(err as Error).message}`));
await checkSocket().catch((err: unknown) => report('FAIL', 'socket', `stopped: ${(err as Error).message}`));
process.exitCode = failures > 0 ? 1 : 0;

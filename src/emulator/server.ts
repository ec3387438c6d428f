/**
 * `startEmulator()`: a local Cognigy engine on one port. The runtime WebSocket API is at `wsUrl`; the HTTP
 * routes (inspection now, the REST API and Socket endpoint later) live under `httpUrl`.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { WS_PATH } from '../protocol/index.js';
import { type EmulatorContext, applyFaults } from './context.js';
import { DEFAULT_FAULTS, type EmulatorFaults, faultsProblem } from './faults.js';
import { dispatch, inspectionRoutes, type Route } from './http-door.js';
import { DEFAULT_OAUTH, type OAuthSettings, oauthRoutes } from './oauth-door.js';
import { odataRoutes } from './odata-door.js';
import { createRandom } from './prng.js';
import { resourceRoutes } from './resource-door.js';
import { restRoutes } from './rest-door.js';
import { RuntimeDoor } from './runtime-door.js';
import { DEFAULT_URL_TOKEN, SocketDoor } from './socket-door.js';
import { createStats, type EmulatorStats } from './stats.js';
import { SessionStore } from './store.js';
import { type TokenSpec, TokenRegistry } from './tokens.js';
import { listenOn } from '../util/listen.js';

export interface EmulatorOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (an ephemeral port) */
  port?: number;
  /** Seed `session-1` … `session-N`, each mid-flow. @default 0 */
  sessions?: number;
  /** Tenant and bot the seeded sessions belong to. @default any tenant and bot */
  tenant?: string;
  botId?: string;
  /** Accepted tokens. @default [{ token: 'dev-token' }] with both runtime scopes */
  tokens?: TokenSpec[];
  /** Answer with the seed's bare shapes only. @default false */
  strict?: boolean;
  faults?: Partial<EmulatorFaults>;
  /** The Socket endpoint's URLToken. @default 'dev-url-token' */
  urlToken?: string;
  /** URLTokens of disabled endpoints: refused with 403. @default [] */
  disabledUrlTokens?: string[];
  /** The Socket endpoint emits `endpoint-ready` (Cognigy.AI 4.79 and later). @default true */
  endpointReady?: boolean;
  /** The Socket endpoint sends `finalPing` as an `output` of type `finalPing`, as older ones do. @default false */
  finalPingAsOutput?: boolean;
  /** The Socket endpoint's path prefix (on-prem): Socket.IO at `<prefix>/socket.io/`. @default '' */
  socketPathPrefix?: string;
  /** The OAuth2 token endpoint's clients, token lifetime and accepted refresh tokens. */
  oauth?: Partial<OAuthSettings>;
}

export interface Emulator {
  /** `ws://host:port/ws/v1` */
  readonly wsUrl: string;
  /** `http://host:port` */
  readonly httpUrl: string;
  readonly port: number;
  readonly store: SessionStore;
  readonly tokens: TokenRegistry;
  stats(): EmulatorStats;
  faults(): EmulatorFaults;
  setFaults(faults: Partial<EmulatorFaults>): void;
  close(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const faults: EmulatorFaults = { ...DEFAULT_FAULTS, ...options.faults };
  const problem = faultsProblem(faults);
  if (problem !== undefined) throw new RangeError(problem);
  const store = new SessionStore({
    count: options.sessions ?? 0,
    tenant: options.tenant ?? null,
    botId: options.botId ?? null,
  });
  const ctx: EmulatorContext = {
    store,
    tokens: new TokenRegistry(options.tokens),
    stats: createStats(),
    strict: options.strict ?? false,
    faults,
    random: createRandom(faults.seed),
    limiters: new Map(),
  };
  applyFaults(ctx, faults);

  const runtime = new RuntimeDoor(ctx);
  const routes: Route[] = [
    ...inspectionRoutes(ctx),
    ...restRoutes(ctx),
    ...oauthRoutes(ctx, { ...DEFAULT_OAUTH, ...options.oauth }),
    ...odataRoutes(ctx),
    ...resourceRoutes(ctx),
  ];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    void dispatch(routes, req, res, url);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req, socket, head) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://emulator.invalid');
    } catch {
      socket.destroy();
      return;
    }
    if (url.pathname.startsWith(socketDoor.path)) return; // the Socket endpoint's own upgrade listener
    if (url.pathname === WS_PATH) runtime.handleUpgrade(req, socket, head, url);
    else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const socketDoor = new SocketDoor(ctx, server, {
    urlToken: options.urlToken ?? DEFAULT_URL_TOKEN,
    disabledUrlTokens: options.disabledUrlTokens,
    endpointReady: options.endpointReady,
    finalPingAsOutput: options.finalPingAsOutput,
    pathPrefix: options.socketPathPrefix,
  });

  const host = options.host ?? '127.0.0.1';
  await listenOn(server, options.port ?? 0, host, '--port');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('emulator: no TCP address');
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    wsUrl: `ws://${hostForUrl}:${address.port}${WS_PATH}`,
    httpUrl: `http://${hostForUrl}:${address.port}`,
    port: address.port,
    store,
    tokens: ctx.tokens,
    stats: () => ctx.stats,
    faults: () => ({ ...ctx.faults }),
    setFaults(next) {
      const merged = { ...ctx.faults, ...next };
      const bad = faultsProblem(merged);
      if (bad !== undefined) throw new RangeError(bad);
      applyFaults(ctx, merged);
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await runtime.close();
        await socketDoor.close();
        for (const socket of sockets) socket.destroy();
        await stopped;
      })();
      return closing;
    },
  };
}

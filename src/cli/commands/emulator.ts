/** `cognigy-reset emulator`: a local engine, ready when it prints one JSON line. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_SCOPES, DEFAULT_TOKEN, parseTokenFlag, type TokenSpec } from '../../emulator/tokens.js';
import { isLoopbackHost } from '../../util/loopback.js';
import { collect, integerIn, numberIn, textUpTo } from '../parse.js';

interface EmulatorFlags {
  host: string;
  port: number;
  sessions: number;
  token?: TokenSpec[];
  apiKey?: TokenSpec[];
  tenant?: string;
  bot?: string;
  strict: boolean;
  latencyMs: number;
  dropEvery: number;
  dropRate: number;
  seed: number;
  blockingShare: number;
  blockingMs: number;
  messageRate: number;
  handshakeRate: number;
  restRate: number;
  odataFailEvery: number;
  odataFailFrom: number;
  odataEmpty500: boolean;
  holdAfterSends: number;
  oauthClient?: { clientId: string; clientSecret: string }[];
  tokenTtl: number;
  urlToken?: string;
  disabledUrlToken?: string[];
  endpointReady: boolean;
  legacyFinalPing: boolean;
  socketPathPrefix?: string;
}

/** `--token TOKEN[:scope,scope]`: a token that is not empty. */
function parseToken(text: string): TokenSpec {
  const spec = parseTokenFlag(text);
  if (spec.token.trim() === '') throw new InvalidArgumentError('Expected a token that is not empty.');
  return spec;
}

/** What a user running the emulator should know and might not: said on stderr, never on stdout. */
function warnings(flags: EmulatorFlags): string[] {
  const known = new Set<string>(DEFAULT_SCOPES);
  const said: string[] = [];
  for (const spec of flags.token ?? []) {
    for (const scope of spec.scopes ?? []) {
      if (!known.has(scope))
        said.push(
          `token scope ${JSON.stringify(scope)} is not one the engine checks (${DEFAULT_SCOPES.join(', ')}): it grants nothing`,
        );
    }
  }
  if (!isLoopbackHost(flags.host))
    said.push(
      `listening on ${flags.host}, not loopback: anyone who can reach this machine can use the emulator's tokens`,
    );
  return said;
}

function parseClientFlag(text: string): { clientId: string; clientSecret: string } {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) {
    throw new InvalidArgumentError('Expected CLIENT_ID:CLIENT_SECRET.');
  }
  return { clientId: text.slice(0, colon), clientSecret: text.slice(colon + 1) };
}

export function emulatorCommand(): Command {
  return new Command('emulator')
    .description(
      'run a local Cognigy engine: the runtime WebSocket API, the REST API, the Socket endpoint and the OAuth2 token endpoint, over one session store',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on; 0 picks a free one', integerIn(0, 65535), 0)
    .option('--sessions <n>', 'seed session-1 … session-N, each mid-flow', integerIn(0, 100_000_000), 0)
    .addOption(
      new Option(
        '--token <token[:scope,scope]>',
        'accept this token (repeatable); default dev-token with both scopes',
      ).argParser(collect(parseToken)),
    )
    .addOption(
      new Option(
        '--api-key <key[:scope,scope]>',
        'accept this REST API key (repeatable): X-API-Key or ?api_key= only, never as a Bearer token',
      ).argParser(collect((text: string) => ({ ...parseToken(text), apiKey: true }))),
    )
    .option('--tenant <id>', 'tenant the seeded sessions belong to (default: any)')
    .option('--bot <id>', 'bot the seeded sessions belong to (default: any)')
    .option('--strict', "answer with the seed's bare shapes only", false)
    .option('--latency-ms <ms>', 'delay before each answer', numberIn(0, 60_000), 0)
    .option(
      '--drop-every <n>',
      'drop a connection on every Nth frame it sends (0: never)',
      integerIn(0, 1e12),
      0,
    )
    .option('--drop-rate <p>', 'probability per frame of dropping the connection', numberIn(0, 1), 0)
    .option('--seed <n>', 'seed for random drops and for which sessions block', integerIn(0, 2 ** 32 - 1), 1)
    .option(
      '--blocking-share <f>',
      'share of seeded sessions caught in a blocking webhook call',
      numberIn(0, 1),
      0,
    )
    .option(
      '--blocking-ms <ms>',
      'how long a blocking call keeps the flow ACTIVE after a reset',
      numberIn(0, 3_600_000),
      1500,
    )
    .option(
      '--message-rate <n>',
      'SEND frames per second per tenant before RATE_LIMITED (0: unlimited)',
      numberIn(0, 1e9),
      0,
    )
    .option(
      '--handshake-rate <n>',
      'handshakes per second per tenant before 429 (0: unlimited)',
      numberIn(0, 1e9),
      0,
    )
    .option(
      '--rest-rate <n>',
      'REST API requests per second per credential before 429 (0: unlimited)',
      numberIn(0, 1e9),
      0,
    )
    .option('--odata-fail-every <n>', 'every Nth OData request answers 503 (0: never)', integerIn(0, 1e9), 0)
    .option(
      '--odata-fail-from <n>',
      'from the Nth OData request on, all answer 500 (0: never)',
      integerIn(0, 1e9),
      0,
    )
    .option('--odata-empty-500', 'answer 500 instead of an empty OData page', false)
    .option(
      '--hold-after-sends <n>',
      'answer N SEND frames, then hold later answers until PUT /emulator/faults sets holdAfterSends to 0 (0: never)',
      integerIn(0, 1e12),
      0,
    )
    .option('--url-token <token>', "the Socket endpoint's URLToken (default: dev-url-token)", textUpTo(256))
    .addOption(
      new Option(
        '--disabled-url-token <token>',
        'the URLToken of a disabled endpoint: refused with 403 (repeatable)',
      ).argParser(collect(textUpTo(256))),
    )
    .addOption(
      new Option(
        '--oauth-client <id:secret>',
        'a client of the OAuth2 token endpoint (repeatable); default dev-client:dev-secret',
      ).argParser(collect(parseClientFlag)),
    )
    .option(
      '--token-ttl <sec>',
      'lifetime of tokens the OAuth2 endpoint issues',
      numberIn(1, 86_400 * 365),
      3600,
    )
    .option('--no-endpoint-ready', 'the Socket endpoint never emits endpoint-ready (Cognigy.AI before 4.79)')
    .option(
      '--legacy-final-ping',
      "the Socket endpoint sends finalPing as an output of type 'finalPing'",
      false,
    )
    .option(
      '--socket-path-prefix <path>',
      'serve the Socket endpoint at <path>/socket.io/, as on-prem endpoints',
    )
    .action(async (flags: EmulatorFlags) => {
      // Loaded only when it runs: the other commands start without the engine's server modules.
      const { startEmulator } = await import('../../emulator/index.js');
      const emulator = await startEmulator({
        endpointReady: flags.endpointReady,
        finalPingAsOutput: flags.legacyFinalPing,
        ...(flags.socketPathPrefix === undefined ? {} : { socketPathPrefix: flags.socketPathPrefix }),
        host: flags.host,
        port: flags.port,
        sessions: flags.sessions,
        ...(flags.token === undefined && flags.apiKey === undefined
          ? {}
          : { tokens: [...(flags.token ?? [{ token: DEFAULT_TOKEN }]), ...(flags.apiKey ?? [])] }),
        ...(flags.tenant === undefined ? {} : { tenant: flags.tenant }),
        ...(flags.bot === undefined ? {} : { botId: flags.bot }),
        strict: flags.strict,
        urlToken: flags.urlToken,
        ...(flags.disabledUrlToken === undefined ? {} : { disabledUrlTokens: flags.disabledUrlToken }),
        oauth: {
          tokenTtlSec: flags.tokenTtl,
          ...(flags.oauthClient === undefined ? {} : { clients: flags.oauthClient }),
        },
        faults: {
          latencyMs: flags.latencyMs,
          dropEveryFrames: flags.dropEvery,
          dropRate: flags.dropRate,
          seed: flags.seed,
          blockingShare: flags.blockingShare,
          blockingMs: flags.blockingMs,
          messageRate: flags.messageRate,
          handshakeRate: flags.handshakeRate,
          restRate: flags.restRate,
          odataFailEvery: flags.odataFailEvery,
          odataFailFrom: flags.odataFailFrom,
          odataEmpty500: flags.odataEmpty500 ? 1 : 0,
          holdAfterSends: flags.holdAfterSends,
        },
      });
      for (const warning of warnings(flags))
        process.stderr.write(`cognigy-reset emulator: warning: ${warning}\n`);
      process.stdout.write(
        `${JSON.stringify({ event: 'listening', wsUrl: emulator.wsUrl, httpUrl: emulator.httpUrl })}\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await emulator.close();
      process.stdout.write(`${JSON.stringify({ event: 'closed' })}\n`);
    });
}

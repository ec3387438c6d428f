/**
 * `cognigy-reset serve`: the control API and dashboard. Ready when it prints one JSON line
 * `{"event":"listening","url":...}`; SIGTERM or SIGINT stop taking work, let in-flight sessions finish
 * and close everything durable.
 */
import { Command, Option } from 'commander';
import { type Emulator, startEmulator } from '../../emulator/index.js';
import { DEFAULT_TOKEN } from '../../emulator/tokens.js';
import { CognigyResetError } from '../../errors.js';
import { buildApp } from '../../serve/app.js';
import { credentialsOf, readConfig, type ServiceConfig } from '../../serve/config.js';
import { JobManager } from '../../serve/jobs.js';
import { openServiceStore } from '../../serve/open-store.js';
import { ResetMetrics } from '../../sinks/prometheus.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../logger.js';
import { integerIn } from '../parse.js';
import { resolveStore, STATE_HELP, STORE_HELP } from '../store-flags.js';

interface ServeFlags {
  host: string;
  port: number;
  store?: string;
  state?: string;
  config?: string;
  emulator: boolean;
  sessions: number;
  lease: number;
  logLevel: LogLevel;
}

export const DEMO_TENANT = 'demo';
export const DEMO_BOT = 'demo-bot';
/** The name the in-process emulator's jobs keep in their settings in place of its URL. */
const EMULATOR_ENGINE = 'serve --emulator';

async function serve(flags: ServeFlags): Promise<void> {
  if (flags.config === undefined && !flags.emulator)
    throw new CognigyResetError('CR_ERR_OPT_MISSING', 'give --config FILE, or --emulator', {
      field: '--config',
    });
  const config: ServiceConfig =
    flags.config === undefined
      ? { maxRunningJobs: 2, rateLimitPerMinute: 600, tenants: new Map() }
      : readConfig(flags.config, process.env);
  const secrets = (): string[] => [...config.tenants.values()].flatMap((t) => t.credentials.secrets());
  const log = createLogger(flags.logLevel, secrets);
  const { location, dir } = resolveStore(flags, process.env);
  const store = await openServiceStore(location);
  // Whatever was opened is closed in reverse order, on a failure to start as on a stop.
  const closers: (() => unknown)[] = [() => store.close()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
  };
  let stopped: Promise<void>;
  try {
    if (flags.emulator) {
      const emulator: Emulator = await startEmulator({
        sessions: flags.sessions,
        tenant: DEMO_TENANT,
        botId: DEMO_BOT,
      });
      closers.push(() => emulator.close());
      config.tenants.set(DEMO_TENANT, {
        name: DEMO_TENANT,
        transport: 'runtime-ws',
        url: emulator.wsUrl,
        tenantId: DEMO_TENANT,
        bot: DEMO_BOT,
        allowInsecure: false,
        // Its port changes at each start: its jobs are kept under a name instead, so they resume.
        engine: EMULATOR_ENGINE,
        // Its OData door and REST API: selectors work on the demo tenant.
        odataUrl: emulator.httpUrl,
        apiUrl: emulator.httpUrl,
        credentials: credentialsOf({ token: DEFAULT_TOKEN, apiKey: DEFAULT_TOKEN, odataKey: DEFAULT_TOKEN }),
      });
      log.info({ wsUrl: emulator.wsUrl, httpUrl: emulator.httpUrl }, 'emulator listening');
    }
    const metrics = new ResetMetrics();
    closers.push(() => metrics.close());
    // Chunks of unfinished jobs, this replica's or another's, are claimed from the store: nothing to restore.
    const jobs = new JobManager({
      maxRunning: config.maxRunningJobs,
      store,
      dir,
      log,
      metrics,
      tenants: config.tenants,
      leaseMs: flags.lease * 1000,
    });
    // Closed once: here on a failure to start, or before the server on a stop (below).
    closers.push(() => jobs.close());
    let draining = false;
    const app = await buildApp({ store, jobs, config, metrics, log, draining: () => draining });
    closers.push(() => app.close());
    // Stopping: no new request is ready; running chunks take no new session, in-flight ones finish, and
    // their claims are given up for another replica. Followers' streams end before the server closes.
    closers.push(() => jobs.close());
    closers.push(() => {
      draining = true;
    });
    try {
      await app.listen({ host: flags.host, port: flags.port });
    } catch (err) {
      throw new CognigyResetError('CR_ERR_OPT_LISTEN', `cannot listen on ${flags.host}:${flags.port}`, {
        field: '--port',
        cause: err,
      });
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : flags.port;
    const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
    stopped = new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        resolve();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    process.stdout.write(`${JSON.stringify({ event: 'listening', url: `http://${host}:${port}` })}\n`);
    log.info({ store: store.location, tenants: [...config.tenants.keys()] }, 'service listening');
  } catch (err) {
    await closeAll();
    throw err;
  }
  await stopped;
  log.info('stopping: in-flight sessions finish');
  await closeAll();
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve the control API and dashboard; prints {"event":"listening","url"} when ready')
    .option('--host <host>', 'the address to listen on', '127.0.0.1')
    .option('--port <port>', 'the port (0: any free port)', integerIn(0, 65_535), 0)
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
    .option('--config <file>', "JSON: each tenant's engine, and where its secrets come from")
    .option('--emulator', 'serve an in-process emulator as tenant demo, bot demo-bot', false)
    .option('--sessions <n>', 'with --emulator: seed session-1 … session-N', integerIn(0, 10_000_000), 2000)
    .option(
      '--lease <seconds>',
      "how long this replica's claim on a chunk of a job lasts without a heartbeat: another replica takes it over after",
      integerIn(3, 3600),
      30,
    )
    .addOption(new Option('--log-level <level>', 'log level (stderr)').choices(LOG_LEVELS).default('info'))
    .action(async (flags: ServeFlags) => {
      await serve(flags);
    });
}

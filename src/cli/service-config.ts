/**
 * The service's config as `serve` runs it: `--config FILE`, or none with `--emulator`, and the in-process
 * emulator's tenant added. Built from plain data the same way by the thread that answers the API and by
 * the thread that runs the jobs, each with its own credentials.
 */
import { CognigyResetError } from '../errors.js';
import { DEFAULT_TOKEN } from '../emulator/tokens.js';
import { credentialsOf, parseConfig, readConfigValue, type ServiceConfig } from '../serve/config.js';

export const DEMO_TENANT = 'demo';
export const DEMO_BOT = 'demo-bot';
/** The name the in-process emulator's jobs keep in their settings in place of its URL. */
const EMULATOR_ENGINE = 'serve --emulator';

export interface ServiceConfigSource {
  /**
   * `--config`'s JSON value (`readConfigSource`; undefined without one), read once: a job thread started
   * later builds the config the API thread has, whatever became of the file since. Secrets are read where
   * the config names them.
   */
  value: unknown;
  /** The in-process emulator's URLs, with `--emulator` once it listens. */
  emulator?: { wsUrl: string; httpUrl: string } | undefined;
}

export function serviceConfig(source: ServiceConfigSource, env: NodeJS.ProcessEnv): ServiceConfig {
  const config: ServiceConfig =
    source.value === undefined
      ? { maxRunningJobs: 2, rateLimitPerMinute: 600, tenants: new Map() }
      : parseConfig(source.value, env);
  if (source.emulator !== undefined) addDemoTenant(config, source.emulator);
  return config;
}

/** `--config FILE` read, or none (`--emulator` alone). */
export function readConfigSource(path: string | undefined): ServiceConfigSource {
  return { value: path === undefined ? undefined : readConfigValue(path) };
}

/** Every secret the config's tenants hold, for a logger to scrub. */
export function serviceSecrets(config: ServiceConfig): string[] {
  return [...config.tenants.values()].flatMap((t) => t.credentials.secrets());
}

/** The in-process emulator as tenant `demo`, bot `demo-bot`. */
export function addDemoTenant(config: ServiceConfig, emulator: { wsUrl: string; httpUrl: string }): void {
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
}

/** `serve` needs a config or the emulator. */
export function requireConfig(path: string | undefined, emulator: boolean): void {
  if (path === undefined && !emulator)
    throw new CognigyResetError('CR_ERR_OPT_MISSING', 'give --config FILE, or --emulator', {
      field: '--config',
    });
}

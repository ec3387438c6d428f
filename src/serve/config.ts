/**
 * The service's `--config FILE` (JSON): each tenant's engine and where its secrets come from (a variable
 * or a file, never the file itself). Secrets are read once at start; they go to the runner only.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { CognigyResetError } from '../errors.js';
import type { Credentials } from '../runner/types.js';
import { StaticTokenProvider } from '../transports/auth/token-provider.js';
import { TRANSPORT_NAMES, type TransportName } from '../transports/create.js';
import { readSecretText, SECRET_FILE_MAX } from '../util/secret-file.js';

const IDENT = { type: 'string', minLength: 1, maxLength: 256 };
const secretSource = { tokenEnv: IDENT, tokenFile: IDENT, apiKeyEnv: IDENT, apiKeyFile: IDENT };

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['tenants'],
  properties: {
    /** Chunks of jobs this replica runs at once; the others wait in the store, oldest job first. */
    maxRunningJobs: { type: 'integer', minimum: 1, maximum: 64, default: 2 },
    /** Requests a minute one API key may send to /v1. */
    rateLimitPerMinute: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 600 },
    tenants: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['transport', 'url'],
        properties: {
          transport: { enum: TRANSPORT_NAMES },
          url: { type: 'string', minLength: 1, maxLength: 2048 },
          /** The engine's tenant id, when it is not the config's name for the tenant. */
          tenantId: IDENT,
          /** The bot a job runs against when the request names none. */
          bot: IDENT,
          allowInsecure: { type: 'boolean', default: false },
          ...secretSource,
          urlTokenEnv: IDENT,
          urlTokenFile: IDENT,
          /** Where selectors read the tenant's analytics data; the key from odataKeyEnv or odataKeyFile. */
          odataUrl: { type: 'string', minLength: 1, maxLength: 2048 },
          odataKeyEnv: IDENT,
          odataKeyFile: IDENT,
          /** The REST API an `endpoint` selector reads (with the apiKey). */
          apiUrl: { type: 'string', minLength: 1, maxLength: 2048 },
          /** Where each outcome's analytics event is posted (the webhook sink); its bearer token from analyticsTokenEnv or analyticsTokenFile. */
          analyticsUrl: { type: 'string', minLength: 1, maxLength: 2048 },
          analyticsTokenEnv: IDENT,
          analyticsTokenFile: IDENT,
        },
      },
    },
  },
} as const;

export interface TenantConfig {
  name: string;
  transport: TransportName;
  url: string;
  tenantId: string;
  bot: string | undefined;
  allowInsecure: boolean;
  credentials: Credentials;
  /** Where selectors read its analytics data (the key is in the credentials). */
  odataUrl?: string | undefined;
  /** The REST API an `endpoint` selector reads. */
  apiUrl?: string | undefined;
  /** Where each outcome's analytics event is posted, through the store's outbox (its token is in the credentials). */
  analyticsUrl?: string | undefined;
  /** A stable name of the engine, for one whose URL changes at each start (the in-process emulator). */
  engine?: string | undefined;
}

export interface ServiceConfig {
  maxRunningJobs: number;
  rateLimitPerMinute: number;
  tenants: Map<string, TenantConfig>;
}

interface RawTenant {
  transport: TransportName;
  url: string;
  tenantId?: string;
  bot?: string;
  allowInsecure: boolean;
  tokenEnv?: string;
  tokenFile?: string;
  apiKeyEnv?: string;
  apiKeyFile?: string;
  urlTokenEnv?: string;
  urlTokenFile?: string;
  odataUrl?: string;
  odataKeyEnv?: string;
  odataKeyFile?: string;
  apiUrl?: string;
  analyticsUrl?: string;
  analyticsTokenEnv?: string;
  analyticsTokenFile?: string;
}

const validate = new Ajv({ useDefaults: true, strict: false }).compile(CONFIG_SCHEMA);

function configError(message: string): CognigyResetError {
  return new CognigyResetError('CR_ERR_API_CONFIG', message, { field: '--config' });
}

/** A secret from a variable or a file; undefined when neither is named. Never echoed in an error. */
function secret(
  name: string,
  what: string,
  env: NodeJS.ProcessEnv,
  variable: string | undefined,
  file: string | undefined,
): string | undefined {
  if (variable !== undefined) {
    const value = env[variable];
    if (value === undefined || value === '')
      throw configError(`tenant ${name}: the variable ${variable} (its ${what}) is not set`);
    return value;
  }
  if (file === undefined) return undefined;
  let text: string | undefined;
  try {
    text = readSecretText(file);
  } catch {
    throw configError(`tenant ${name}: its ${what} file cannot be read`);
  }
  if (text === undefined)
    throw configError(`tenant ${name}: its ${what} file holds more than ${SECRET_FILE_MAX} bytes`);
  if (text === '') throw configError(`tenant ${name}: its ${what} file is empty`);
  return text;
}

export function credentialsOf(values: {
  token?: string;
  apiKey?: string;
  urlToken?: string;
  odataKey?: string;
  webhookToken?: string;
}): Credentials {
  const list = [values.token, values.apiKey, values.urlToken, values.odataKey, values.webhookToken].filter(
    (v): v is string => v !== undefined,
  );
  const provider = values.token === undefined ? undefined : new StaticTokenProvider(values.token);
  return {
    tokens: () => provider,
    apiKey: values.apiKey,
    urlToken: values.urlToken,
    odataKey: values.odataKey,
    webhookToken: values.webhookToken,
    secrets: () => list,
  };
}

export function parseConfig(value: unknown, env: NodeJS.ProcessEnv): ServiceConfig {
  const copy = structuredClone(value);
  if (!validate(copy)) {
    const e = validate.errors![0]!;
    throw configError(`--config ${e.instancePath || '(top)'} ${e.message ?? 'is invalid'}`);
  }
  const raw = copy as {
    maxRunningJobs: number;
    rateLimitPerMinute: number;
    tenants: Record<string, RawTenant>;
  };
  const tenants = new Map<string, TenantConfig>();
  const byEngineId = new Map<string, string>();
  for (const [name, t] of Object.entries(raw.tenants)) {
    // Audit records name the engine's tenant: a key bound to a tenant sees the records of that id alone.
    const tenantId = t.tenantId ?? name;
    const other = byEngineId.get(tenantId);
    if (other !== undefined)
      throw configError(
        `tenant ${name}: tenantId ${JSON.stringify(tenantId)} is tenant ${other}'s too; audit records name the engine's tenant, so each tenant needs its own (one tenant serves several bots: a job names its bot)`,
      );
    byEngineId.set(tenantId, name);
    const token = secret(name, 'token', env, t.tokenEnv, t.tokenFile);
    const apiKey = secret(name, 'API key', env, t.apiKeyEnv, t.apiKeyFile);
    const urlToken = secret(name, 'URLToken', env, t.urlTokenEnv, t.urlTokenFile);
    const odataKey = secret(name, 'OData key', env, t.odataKeyEnv, t.odataKeyFile);
    const webhookToken = secret(name, 'analytics token', env, t.analyticsTokenEnv, t.analyticsTokenFile);
    if (t.odataUrl !== undefined && odataKey === undefined)
      throw configError(`tenant ${name}: odataUrl needs odataKeyEnv or odataKeyFile`);
    tenants.set(name, {
      name,
      transport: t.transport,
      url: t.url,
      tenantId,
      bot: t.bot,
      allowInsecure: t.allowInsecure,
      credentials: credentialsOf({
        ...(token === undefined ? {} : { token }),
        ...(apiKey === undefined ? {} : { apiKey }),
        ...(urlToken === undefined ? {} : { urlToken }),
        ...(odataKey === undefined ? {} : { odataKey }),
        ...(webhookToken === undefined ? {} : { webhookToken }),
      }),
      odataUrl: t.odataUrl,
      apiUrl: t.apiUrl,
      analyticsUrl: t.analyticsUrl,
    });
  }
  return { maxRunningJobs: raw.maxRunningJobs, rateLimitPerMinute: raw.rateLimitPerMinute, tenants };
}

/** The config file's JSON value, read once: `serve`'s two threads build their configs from the same one. */
export function readConfigValue(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch {
    throw configError(`--config ${path}: cannot be read as JSON`);
  }
}

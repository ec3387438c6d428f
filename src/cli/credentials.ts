/**
 * The CLI's credentials for a job: read from the environment and from the files the flags name, never
 * from a flag's value. The runner gets them as `Credentials`; every secret read here is scrubbed from the
 * logs.
 */
import { CognigyResetError, type ErrorCode } from '../errors.js';
import type { Credentials } from '../runner/types.js';
import { OAuth2TokenProvider, oauth2FromEnv, type OAuth2Options } from '../transports/auth/oauth2.js';
import { StaticTokenProvider, type TokenProvider } from '../transports/auth/token-provider.js';
import { readSecretText, SECRET_FILE_MAX } from '../util/secret-file.js';

export interface CredentialFlags {
  transport: string;
  dryRun: boolean;
  allowInsecure: boolean;
  tokenFile?: string | undefined;
  analyticsUrl?: string | undefined;
  analyticsTokenFile?: string | undefined;
}

/** A secret read from a file named by `option`, trimmed; an empty file is refused with `emptyCode`. */
export function readSecretFile(path: string, option: string, emptyCode: ErrorCode): string {
  let secret: string | undefined;
  try {
    secret = readSecretText(path);
  } catch (cause) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `cannot read ${option} ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      { field: option, cause },
    );
  }
  if (secret === undefined)
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `${option} ${path} holds more than ${SECRET_FILE_MAX} bytes: no secret is that long`,
      { field: option },
    );
  if (secret === '') throw new CognigyResetError(emptyCode, `${option} ${path} is empty`, { field: option });
  return secret;
}

function readToken(flags: CredentialFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.tokenFile !== undefined)
    return readSecretFile(flags.tokenFile, '--token-file', 'CR_ERR_AUTH_NO_TOKEN');
  const token = env['COGNIGY_API_TOKEN'];
  return token === undefined || token === '' ? undefined : token;
}

/**
 * The analytics tracker's bearer token: `--analytics-token-file`, else env `COGNIGY_ANALYTICS_TOKEN`. It
 * goes into a header, so it must be one run of visible characters; the error never shows it.
 */
function readAnalyticsToken(flags: CredentialFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.analyticsTokenFile !== undefined && flags.analyticsUrl === undefined) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', '--analytics-token-file needs --analytics-url', {
      field: '--analytics-token-file',
    });
  }
  if (flags.analyticsUrl === undefined) return undefined;
  const source =
    flags.analyticsTokenFile !== undefined ? '--analytics-token-file' : 'COGNIGY_ANALYTICS_TOKEN';
  const token =
    flags.analyticsTokenFile !== undefined
      ? readSecretFile(flags.analyticsTokenFile, '--analytics-token-file', 'CR_ERR_OPT_INVALID')
      : env['COGNIGY_ANALYTICS_TOKEN'];
  if (token === undefined || token === '') return undefined;
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new CognigyResetError(
      'CR_ERR_OPT_INVALID',
      `Expected the analytics token from ${source} to be visible ASCII without spaces (it is sent as a bearer token); it is not (value not shown)`,
      { field: source },
    );
  }
  return token;
}

/** The engine's credentials as the chosen transport needs them; a dry run reads none but a URLToken. */
export function engineCredentials(flags: CredentialFlags, env: NodeJS.ProcessEnv): MutableCredentials {
  const rest = flags.transport === 'cognigy-rest';
  const socket = flags.transport === 'cognigy-socket';
  const apiKey = rest && !flags.dryRun ? env['COGNIGY_API_KEY'] || undefined : undefined;
  // Read in a dry run too: the endpoint URL may end in the URLToken, which the printed endpoint leaves out.
  const urlToken = socket ? env['COGNIGY_URL_TOKEN'] || undefined : undefined;
  const staticToken =
    flags.dryRun || socket || (rest && apiKey !== undefined) ? undefined : readToken(flags, env);
  const oauth2: OAuth2Options | undefined =
    flags.dryRun || socket ? undefined : oauth2FromEnv(env, staticToken);
  const secrets = new Set<string>();
  for (const secret of [staticToken, apiKey, urlToken, oauth2?.clientSecret, oauth2?.refreshToken])
    if (secret !== undefined) secrets.add(secret);
  let provider: TokenProvider | undefined;
  const credentials: MutableCredentials = {
    apiKey,
    urlToken,
    hasToken: staticToken !== undefined || oauth2 !== undefined,
    tokens: () =>
      (provider ??=
        oauth2 !== undefined
          ? new OAuth2TokenProvider({ allowInsecure: flags.allowInsecure, ...oauth2 })
          : staticToken === undefined
            ? undefined
            : new StaticTokenProvider(staticToken)),
    secrets: () => [...secrets],
    secretSet: secrets,
    addSecret: (secret) => secrets.add(secret),
  };
  return credentials;
}

export interface MutableCredentials extends Credentials {
  /** A token or OAuth2 is configured. */
  hasToken: boolean;
  /** The secrets, live: what is added later (an OData key) is scrubbed from then on. */
  secretSet: Set<string>;
  addSecret(secret: string): void;
}

/** Reads the webhook's token (once `--analytics-url` is known to be valid) into the credentials. */
export function addWebhookToken(
  credentials: MutableCredentials,
  flags: CredentialFlags,
  env: NodeJS.ProcessEnv,
): void {
  const token = readAnalyticsToken(flags, env);
  if (token === undefined) return;
  credentials.webhookToken = token;
  credentials.addSecret(token);
}

/** Refuses a run that would send with no credentials for its transport. */
export function requireCredentials(flags: CredentialFlags, credentials: MutableCredentials): void {
  if (flags.dryRun) return;
  if (flags.transport === 'cognigy-socket') {
    if (credentials.urlToken === undefined) {
      throw new CognigyResetError(
        'CR_ERR_AUTH_NO_TOKEN',
        'no URLToken: set COGNIGY_URL_TOKEN for --transport cognigy-socket',
      );
    }
    return;
  }
  if (!credentials.hasToken && credentials.apiKey === undefined) {
    throw new CognigyResetError(
      'CR_ERR_AUTH_NO_TOKEN',
      flags.transport === 'cognigy-rest'
        ? 'no REST credentials: set COGNIGY_API_KEY, or configure OAuth2 (COGNIGY_OAUTH_TOKEN_URL, _CLIENT_ID, _CLIENT_SECRET)'
        : 'no token: set COGNIGY_API_TOKEN, pass --token-file PATH, or configure OAuth2 (COGNIGY_OAUTH_TOKEN_URL, _CLIENT_ID, _CLIENT_SECRET)',
    );
  }
}

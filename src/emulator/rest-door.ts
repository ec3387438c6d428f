/**
 * Cognigy's REST API v2.0 session operations, over the same session store as the runtime door, so a
 * reset through one door is visible through the others:
 *   POST [/new]/v2.0/sessions/{id}/context/reset   {userId, flowReferenceId, entrypoint} → the Flow's default context
 *   POST [/new]/v2.0/sessions/{id}/state/reset     {userId}                              → {}
 *   POST [/new]/v2.0/sessions/{id}/context/inject  {userId, context}                     → context
 *   POST [/new]/v2.0/sessions/{id}/state/inject    {userId, state}                       → {state}
 * The context reset takes the field as the official client's types spell it, `entrypoint`: a body with
 * only `entryPoint` (the reference pages' spelling) is refused with 400/1000, so a client that drifts to
 * it is caught here. Credentials: an API key as `X-API-Key` or `?api_key=`, an OAuth2 access token (from
 * the token endpoint) as `Authorization: Bearer`, never one in the other's place; the emulator's tokens
 * (`dev-token`) in either. No scope is checked
 * here: a 403 comes from the user's roles, modelled as the projects a key may manage (`TokenSpec.projects`).
 * Errors are RFC 7807 problems with Cognigy's numeric `code` (1000 missing argument, 1002 not found,
 * 1004 conflict, 1005 invalid argument) and a `traceId`; a session whose Flow execution never ends
 * (`stuck`) answers resets with 409; past the `restRate` fault, 429 with `Retry-After`.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type EmulatorContext, rateLimit } from './context.js';
import { type HttpResult, readBodyText, type Route } from './http-door.js';
import { bump } from './stats.js';
import type { TokenGrant, TokenRegistry } from './tokens.js';

const MAX_BODY_BYTES = 60 * 1024;
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
};

class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBodyText(req, MAX_BODY_BYTES);
  if (text === undefined) throw new Problem(413, 413, 'request body exceeds 60 kB');
  let body: unknown;
  try {
    body = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw new Problem(400, 1005, 'body is not valid JSON');
  }
  if (!isObject(body)) throw new Problem(400, 1005, 'body must be a JSON object');
  return body;
}

/**
 * The caller's grant: an API key (or a token) where keys go, an OAuth2 access token (or a token) as
 * `Bearer`, or nothing: an API key is never taken as `Bearer`, nor an access token as a key.
 */
function credential(
  req: IncomingMessage,
  url: URL,
  tokens: TokenRegistry,
): { key: string; grant: TokenGrant } | undefined {
  const found = (key: string | undefined, kind: TokenGrant['kind']) => {
    const grant = tokens.check(key);
    return grant !== undefined && (grant.kind === kind || grant.kind === 'token')
      ? { key: key!, grant }
      : undefined;
  };
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return found(apiKey, 'key');
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer /i.test(auth)) return found(auth.slice(7).trim(), 'oauth');
  return found(url.searchParams.get('api_key') ?? undefined, 'key');
}

function requireString(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (value === undefined || value === null || value === '') {
    throw new Problem(400, 1000, `missing argument: ${name}`);
  }
  if (typeof value !== 'string') throw new Problem(400, 1005, `invalid argument: ${name} must be a string`);
  return value;
}

type Operation = 'context/reset' | 'state/reset' | 'context/inject' | 'state/inject';

export function restRoutes(ctx: EmulatorContext): Route[] {
  const handle = async (req: IncomingMessage, id: string, url: URL, op: Operation): Promise<HttpResult> => {
    const traceId = `trace-${randomBytes(8).toString('hex')}`;
    try {
      const caller = credential(req, url, ctx.tokens);
      if (caller === undefined) throw new Problem(401, 401, 'API key or token missing, unknown or expired');
      const { key, grant } = caller;
      const wait = rateLimit(ctx, 'rest', key, ctx.faults.restRate);
      if (wait > 0) {
        throw new Problem(429, 429, 'rate limit exceeded', {
          'Retry-After': String(Math.max(1, Math.ceil(wait / 1000))),
        });
      }
      const body = await readBody(req);
      const userId = requireString(body, 'userId');
      const session = ctx.store.get(id);
      if (session === undefined || session.userId !== userId) {
        throw new Problem(404, 1002, 'no session with this sessionId for this userId');
      }
      if (grant.projects !== undefined && !grant.projects.has(session.entrypoint)) {
        throw new Problem(403, 403, "the user's roles do not allow managing this project's sessions");
      }
      if (session.blockingMs === null && op.endsWith('/reset')) {
        throw new Problem(409, 1004, 'a Flow execution that does not end is in progress for this session');
      }
      let result: unknown;
      switch (op) {
        case 'context/reset': {
          const flowReferenceId = requireString(body, 'flowReferenceId');
          const entrypoint = requireString(body, 'entrypoint');
          if (flowReferenceId !== session.flowReferenceId) throw new Problem(404, 1002, 'flow not found');
          if (entrypoint !== session.entrypoint)
            throw new Problem(404, 1002, 'project (entrypoint) not found');
          result = ctx.store.resetContext(id);
          break;
        }
        case 'state/reset':
          ctx.store.resetNluState(id);
          result = {};
          break;
        case 'context/inject': {
          const context = body['context'];
          if (context === undefined) throw new Problem(400, 1000, 'missing argument: context');
          if (!isObject(context)) throw new Problem(400, 1005, 'invalid argument: context must be an object');
          result = ctx.store.injectContext(id, context);
          break;
        }
        case 'state/inject': {
          const state = requireString(body, 'state');
          ctx.store.injectNluState(id, state);
          result = { state };
          break;
        }
      }
      bump(ctx.stats.rest, `${op} 200`);
      return { status: 200, body: result };
    } catch (err) {
      if (!(err instanceof Problem)) throw err;
      bump(ctx.stats.rest, `${op} ${err.status}`);
      return {
        status: err.status,
        body: {
          type: 'about:blank',
          title: TITLES[err.status] ?? 'Error',
          status: err.status,
          detail: err.detail,
          instance: url.pathname,
          traceId,
          code: err.code,
          details: {},
        },
        headers: { 'Content-Type': 'application/problem+json', ...err.headers },
      };
    }
  };
  const ops: Operation[] = ['context/reset', 'state/reset', 'context/inject', 'state/inject'];
  return ops.map((op) => ({
    method: 'POST',
    pattern: new RegExp(`^(?:/new)?/v2\\.0/sessions/([^/]+)/${op.replace('/', '\\/')}$`),
    handler: (req, [id], url) => handle(req, decodeURIComponent(id!), url, op),
  }));
}

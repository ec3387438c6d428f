/**
 * The two REST API v2.0 reads that complete a selector's row (docs/selectors.md):
 *   GET [/new]/v2.0/endpoints/{id}   → {_id, referenceId, name, flowId, entrypoint, URLToken, channel}
 *   GET [/new]/v2.0/flows/{id}       → {_id, referenceId, name}
 * `{id}` is the resource's `_id` or its reference id (OData rows carry the latter). Credentials as on the
 * REST door; errors are RFC 7807 problems with Cognigy's numeric `code`.
 */
import type { IncomingMessage } from 'node:http';
import type { EmulatorContext } from './context.js';
import type { HttpResult, Route } from './http-door.js';
import { bump } from './stats.js';
import { SEED_ENDPOINTS, SEED_FLOWS } from './steps.js';

function credential(req: IncomingMessage, url: URL): string | undefined {
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer /i.test(auth)) return auth.slice(7).trim();
  return url.searchParams.get('api_key') ?? undefined;
}

function problem(status: number, code: number, detail: string, url: URL): HttpResult {
  return {
    status,
    body: {
      type: 'about:blank',
      title: status === 401 ? 'Unauthorized' : 'Not Found',
      status,
      detail,
      instance: url.pathname,
      code,
      details: {},
    },
    headers: { 'Content-Type': 'application/problem+json' },
  };
}

export function resourceRoutes(ctx: EmulatorContext): Route[] {
  const read =
    (kind: 'endpoints' | 'flows') =>
    (req: IncomingMessage, [raw]: string[], url: URL): HttpResult => {
      if (ctx.tokens.check(credential(req, url)) === undefined) {
        bump(ctx.stats.rest, `GET ${kind} 401`);
        return problem(401, 401, 'API key or token missing, unknown or expired', url);
      }
      const id = decodeURIComponent(raw!);
      const found =
        kind === 'endpoints'
          ? SEED_ENDPOINTS.find((e) => e._id === id || e.referenceId === id)
          : SEED_FLOWS.map(({ _id, referenceId, name }) => ({ _id, referenceId, name })).find(
              (f) => f._id === id || f.referenceId === id,
            );
      bump(ctx.stats.rest, `GET ${kind} ${found === undefined ? 404 : 200}`);
      if (found === undefined) return problem(404, 1002, `no ${kind.slice(0, -1)} with this id`, url);
      return { status: 200, body: { ...found } };
    };
  return (['endpoints', 'flows'] as const).map((kind) => ({
    method: 'GET',
    pattern: new RegExp(`^(?:/new)?/v2\\.0/${kind}/([^/]+)$`),
    handler: read(kind),
  }));
}

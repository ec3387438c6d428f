/**
 * `GET /v1/key`: what the calling key may do — its id, scopes and tenants, and the configured tenants it
 * may start jobs on — so a client (the dashboard) can offer what the key allows and say what it lacks.
 * Any valid key may ask; it never shows the key or its hash.
 */
import type { FastifyInstance } from 'fastify';
import type { ServiceDeps } from './deps.js';
import { SCOPES } from './keys.js';
import { principalOf } from './route-helpers.js';
import { problems, SECURITY } from './schemas.js';

const names = { type: 'array', items: { type: 'string' } };

const KEY_VIEW = {
  type: 'object',
  required: ['id', 'scopes', 'boundTo', 'tenants', 'lacks'],
  properties: {
    id: { type: 'string' },
    scopes: names,
    boundTo: { ...names, description: 'the tenants the key is bound to; empty: every tenant' },
    tenants: { ...names, description: 'the configured tenants this key may use' },
    lacks: { ...names, description: 'the scopes the key does not have' },
  },
} as const;

export function keyRoute(deps: ServiceDeps) {
  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    app.get(
      '/v1/key',
      {
        schema: {
          summary: 'The calling key: its scopes, its tenants, and the scopes it lacks',
          description: 'Any valid key. Nothing secret: the key and its hash are never shown.',
          security: SECURITY,
          response: { 200: KEY_VIEW, ...problems(401) },
        },
      },
      (request, reply) => {
        const principal = principalOf(request);
        const configured = [...deps.config.tenants.keys()];
        return reply.send({
          id: principal.keyId,
          scopes: principal.scopes,
          boundTo: principal.tenants,
          tenants:
            principal.tenants.length === 0
              ? configured
              : configured.filter((name) => principal.tenants.includes(name)),
          lacks: SCOPES.filter((scope) => !principal.scopes.includes(scope)),
        });
      },
    );
    done();
  };
}

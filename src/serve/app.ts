/**
 * The service's HTTP API on Fastify: routes, auth, problem+json refusals, OpenAPI at `/openapi.json`
 * and its interactive reference at `/docs`. Jobs are run by `JobManager`; nothing here holds a secret.
 */
import { isUtf8 } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import { CognigyResetError } from '../errors.js';
import { errorOf } from './job-model.js';
import { auditRoutes } from './audit-routes.js';
import type { ServiceDeps } from './deps.js';
import { dashboardRoutes } from './dashboard.js';
import { keyRoute } from './key-route.js';
import { authenticate, KeyUse, requireScope } from './keys.js';
import { previewRoutes } from './preview-routes.js';
import { PROBLEM_TYPE, problemOf, refuse } from './problem.js';
import { jobCreateRoute } from './job-create.js';
import { resumeRoute } from './resume-route.js';
import { principalOf } from './route-helpers.js';
import { serviceMetrics } from './service-metrics.js';
import { jobRoutes } from './routes.js';
import { sessionRoutes } from './session-routes.js';

/** Fastify's own validator options, but for coercion (set per part) and keeping unknown fields to refuse. */
const AJV_OPTIONS = {
  useDefaults: true,
  removeAdditional: false,
  addUsedSchema: false,
  allErrors: false,
} as const;

function withFormats(ajv: Ajv): Ajv {
  addFormats.default(ajv);
  return ajv;
}

/** JSON bodies at most this large; uploads have their own bound. */
const BODY_LIMIT = 8 * 1024 * 1024;

export async function buildApp(deps: ServiceDeps): Promise<FastifyInstance> {
  const app = fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // A session id is up to 256 characters, each up to three when percent-encoded.
    routerOptions: { maxParamLength: 1024 },
    // The router's refusals (a path that is not UTF-8 once decoded, a parameter past the bound) and the
    // HTTP parser's (headers too large, a malformed request) are problems with a code too.
    frameworkErrors: (err, _request, reply: FastifyReply) => {
      const problem = problemOf(refuse('CR_ERR_OPT_INVALID', `the request path is not valid (${err.code})`));
      void reply.status(problem.status).type(PROBLEM_TYPE).send(problem);
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const [status, problem] =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, problemOf(refuse('CR_ERR_API_TOO_LARGE', 'the request headers are too large'))]
          : [400, problemOf(refuse('CR_ERR_OPT_INVALID', 'the request is not valid HTTP'))];
      const body = JSON.stringify({ ...problem, status });
      if (socket.writable)
        socket.write(
          `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: ${PROBLEM_TYPE}\r\nConnection: close\r\n\r\n${body}`,
        );
      socket.destroy(err);
    },
  });
  // A query string, a path and headers are text: their values are coerced to the schema's types. A JSON
  // body is validated as sent: `"600"` is not a number, nor `null` 0.
  const coercing = withFormats(new Ajv({ ...AJV_OPTIONS, coerceTypes: 'array' }));
  const asSent = withFormats(new Ajv({ ...AJV_OPTIONS, coerceTypes: false }));
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? asSent : coercing).compile(schema),
  );
  app.decorateRequest('principal', null);
  // JSON bodies decode strictly: Node's decoder would turn each invalid byte into U+FFFD, and an id no
  // client sent would be reset and audited.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    if (!isUtf8(body))
      done(refuse('CR_ERR_CLI_INPUT_ENCODING', 'the JSON body is not valid UTF-8'), undefined);
    else void parseJson(request, body.toString('utf8'), done);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'cognigy-reset service',
        version: '1',
        description:
          'Reset Cognigy sessions through jobs. Every /v1 path needs `Authorization: Bearer <key>` (keys from `cognigy-reset keys create`); refusals are application/problem+json with a CR_ERR_* code.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // Per key (its id), and per address for a request with no valid key; applied in the auth hook below.
  await app.register(rateLimit, {
    global: false,
    max: deps.config.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (request) =>
      request.principal === null ? `ip:${request.ip}` : `key:${request.principal.keyId}`,
    errorResponseBuilder: (_request, context) =>
      new CognigyResetError(
        'CR_ERR_API_RATE_LIMITED',
        `at most ${context.max} requests a minute per key: retry in ${context.after}`,
      ),
  });
  const limit = app.rateLimit();
  const keyUse = new KeyUse(deps.store, (err) =>
    deps.log?.warn({ err: errorOf(err) }, "an API key's last use was not written"),
  );

  app.setErrorHandler((err: FastifyError, request, reply) => {
    // A client that left before its body ended broke nothing of the service's: no answer reaches it.
    const left = !request.raw.complete && (request.raw.readableAborted || request.raw.destroyed);
    const problem = problemOf(
      left ? refuse('CR_ERR_OPT_INVALID', 'the request body ended early: the client left') : codedError(err),
    );
    if (problem.status >= 500)
      deps.log?.error(
        { method: request.method, route: request.routeOptions.url, error: err.message },
        'request failed',
      );
    void reply.status(problem.status).type(PROBLEM_TYPE).send(problem);
  });
  app.setNotFoundHandler((request, reply) => {
    const problem = problemOf(refuse('CR_ERR_API_NOT_FOUND', `no route ${request.method} ${request.url}`));
    void reply.status(404).type(PROBLEM_TYPE).send(problem);
  });

  // Every /v1 path: a known key first, counted against its rate limit (a refused one against its
  // address's), then the route's scope, before the body is read. The router matches the decoded path, so
  // a route is judged by its pattern: `/%761/jobs` is `/v1/jobs`.
  app.addHook('onRequest', async (request: FastifyRequest, reply) => {
    if (!underV1(request.routeOptions.url ?? request.url)) return;
    let refused: Error | undefined;
    try {
      request.principal = await authenticate(deps.store, request.headers.authorization);
    } catch (err) {
      refused = err as Error;
    }
    await limit.call(app, request, reply);
    if (refused !== undefined) throw refused;
    const principal = principalOf(request);
    keyUse.seen(principal.keyId);
    const scope = request.routeOptions.config.scope;
    if (scope !== undefined) requireScope(principal, scope);
  });

  serviceMetrics(app, deps);

  app.get('/healthz', { schema: { hide: true } }, (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    if (deps.draining()) return reply.status(503).send({ status: 'draining' });
    await deps.store.checkWritable();
    return { status: 'ready' };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(await deps.metrics.text()),
  );
  app.get('/openapi.json', { schema: { hide: true } }, (_request, reply) => reply.send(app.swagger()));

  await app.register(jobCreateRoute(deps));
  await app.register(jobRoutes(deps));
  await app.register(resumeRoute(deps));
  await app.register(sessionRoutes(deps));
  await app.register(auditRoutes(deps));
  await app.register(previewRoutes(deps));
  await app.register(keyRoute(deps));
  await app.register(dashboardRoutes());
  return app;
}

const underV1 = (path: string): boolean =>
  path === '/v1' || path.startsWith('/v1/') || path.startsWith('/v1?');

/** Fastify's own refusals, as coded errors. */
function codedError(err: FastifyError): unknown {
  if (err instanceof CognigyResetError) return err;
  if (err.validation !== undefined) {
    const first = err.validation[0];
    const params = (first?.params ?? {}) as { missingProperty?: string; additionalProperty?: string };
    const path = (first?.instancePath ?? '').slice(1).replace(/\//g, '.');
    const leaf = params.missingProperty ?? params.additionalProperty;
    const field = leaf === undefined ? path : path === '' ? leaf : `${path}.${leaf}`;
    const where = err.validationContext ?? 'request';
    const problem =
      params.additionalProperty !== undefined ? 'is not a field' : (first?.message ?? 'is invalid');
    return new CognigyResetError(
      params.missingProperty !== undefined ? 'CR_ERR_OPT_MISSING' : 'CR_ERR_OPT_INVALID',
      `${where} ${field || '(whole)'}: ${problem}`,
      field === '' ? {} : { field },
    );
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return refuse(
        'CR_ERR_API_MEDIA_TYPE',
        'the body must be application/json, text/csv or application/x-ndjson',
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return refuse(
        'CR_ERR_API_TOO_LARGE',
        `a JSON body is at most ${BODY_LIMIT} bytes: upload CSV or JSON Lines`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return refuse('CR_ERR_OPT_INVALID', 'the request body is empty or malformed');
    default:
      if (err instanceof SyntaxError || err.statusCode === 400)
        return refuse('CR_ERR_OPT_INVALID', 'the request body is not valid JSON');
      return err;
  }
}

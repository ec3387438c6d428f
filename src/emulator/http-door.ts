/**
 * Plain HTTP on the emulator's port: the inspection routes under `/emulator/` for tests and the demo.
 * Bodies are JSON, capped at 1 MiB; errors are `{error: {code, message}}`. Nothing here shows a token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type EmulatorContext, applyFaults } from './context.js';
import { type EmulatorFaults, faultsProblem } from './faults.js';
import { executedSteps, startedOn } from './steps.js';
import { type SessionSpec, sessionView } from './store.js';

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_BULK_CREATE = 1_000_000;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export type RouteHandler = (
  req: IncomingMessage,
  params: string[],
  url: URL,
) => Promise<HttpResult> | HttpResult;
export interface HttpResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}
export interface Route {
  method: string;
  pattern: RegExp;
  handler: RouteHandler;
}

/**
 * A request body as text, or `undefined` once it passes `limit` bytes (then reading stops). Every door
 * reads its bodies through this and answers an oversized one in its own error format.
 */
export async function readBodyText(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBodyText(req, MAX_BODY_BYTES);
  if (text === undefined) throw new HttpError(413, 'CR_EMU_ERR_BAD_REQUEST', 'body exceeds 1 MiB');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'CR_EMU_ERR_BAD_REQUEST', 'body is not valid JSON');
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

const SPEC_FIELDS: Record<string, (v: unknown) => boolean> = {
  sessionId: (v) => typeof v === 'string' && v.length > 0 && v.length <= 256,
  tenant: (v) => v === null || typeof v === 'string',
  botId: (v) => v === null || typeof v === 'string',
  userId: (v) => typeof v === 'string',
  flowReferenceId: (v) => typeof v === 'string',
  entrypoint: (v) => typeof v === 'string',
  flowState: (v) => v === 'ACTIVE' || v === 'RESET',
  dialogState: (v) => v === 'WARM' || v === 'COLD',
  engineState: (v) => v === 'RUNNING' || v === 'INITIALIZED',
  variables: isObject,
  history: (v) => Array.isArray(v),
  nluContext: (v) => v === null || isObject(v),
  blockingMs: (v) => typeof v === 'number' && v >= 0 && Number.isFinite(v),
  stuck: (v) => typeof v === 'boolean',
  rejects: (v) => typeof v === 'boolean',
  engineError: (v) => typeof v === 'boolean',
};

function toSpec(input: unknown, index: number): SessionSpec {
  if (!isObject(input))
    throw new HttpError(400, 'CR_EMU_ERR_BAD_REQUEST', `sessions[${index}] must be an object`);
  for (const [key, value] of Object.entries(input)) {
    const check = SPEC_FIELDS[key];
    if (check === undefined)
      throw new HttpError(400, 'CR_EMU_ERR_BAD_REQUEST', `sessions[${index}].${key} is unknown`);
    if (!check(value))
      throw new HttpError(400, 'CR_EMU_ERR_BAD_REQUEST', `sessions[${index}].${key} is invalid`);
  }
  if (input['sessionId'] === undefined) {
    throw new HttpError(400, 'CR_EMU_ERR_BAD_REQUEST', `sessions[${index}].sessionId is required`);
  }
  return input as unknown as SessionSpec;
}

/** The inspection routes. */
export function inspectionRoutes(ctx: EmulatorContext): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^\/emulator\/sessions\/([^/]+)$/,
      handler: (_req, [id]) => {
        const session = ctx.store.get(decodeURIComponent(id!));
        if (session === undefined) throw new HttpError(404, 'CR_EMU_ERR_NOT_FOUND', 'no such session');
        const { sessionId } = session;
        return {
          status: 200,
          body: {
            ...sessionView(session),
            flowDefaultContext: ctx.store.flowDefault(session.flowReferenceId),
            endpointReferenceId: startedOn(ctx.store, sessionId, ctx.faults.seed),
            executedSteps: executedSteps(ctx.store, sessionId, ctx.faults.seed),
          },
        };
      },
    },
    {
      method: 'POST',
      pattern: /^\/emulator\/sessions$/,
      handler: async (req) => {
        const body = await readJsonBody(req);
        if (!isObject(body)) throw new HttpError(400, 'CR_EMU_ERR_BAD_REQUEST', 'body must be a JSON object');
        let specs: SessionSpec[];
        if (typeof body['count'] === 'number') {
          const count = body['count'];
          const prefix = typeof body['prefix'] === 'string' ? body['prefix'] : 'bulk-';
          if (!Number.isInteger(count) || count < 1 || count > MAX_BULK_CREATE) {
            throw new HttpError(
              400,
              'CR_EMU_ERR_BAD_REQUEST',
              `count must be an integer in [1, ${MAX_BULK_CREATE}]`,
            );
          }
          const template = isObject(body['template'])
            ? toSpec({ sessionId: 'x', ...body['template'] }, 0)
            : {};
          specs = Array.from({ length: count }, (_, i) => ({ ...template, sessionId: `${prefix}${i + 1}` }));
        } else if (Array.isArray(body['sessions'])) {
          specs = body['sessions'].map(toSpec);
        } else {
          specs = [toSpec(body, 0)];
        }
        const clash = specs.find((spec) => ctx.store.has(spec.sessionId));
        if (clash !== undefined) {
          throw new HttpError(409, 'CR_EMU_ERR_SESSION_EXISTS', `session ${clash.sessionId} exists already`);
        }
        for (const spec of specs) ctx.store.create(spec);
        return {
          status: 201,
          body: { created: specs.length, sessionIds: specs.slice(0, 1000).map((s) => s.sessionId) },
        };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/emulator\/sessions\/([^/]+)$/,
      handler: (_req, [id]) => {
        if (!ctx.store.delete(decodeURIComponent(id!))) {
          throw new HttpError(404, 'CR_EMU_ERR_NOT_FOUND', 'no such session');
        }
        return { status: 204, body: undefined };
      },
    },
    {
      method: 'GET',
      pattern: /^\/emulator\/stats$/,
      handler: () => ({
        status: 200,
        body: {
          ...ctx.stats,
          resetsPerSession: ctx.store.resetsPerSession(),
          sessions: ctx.store.size,
          strict: ctx.strict,
        },
      }),
    },
    { method: 'GET', pattern: /^\/emulator\/faults$/, handler: () => ({ status: 200, body: ctx.faults }) },
    {
      method: 'PUT',
      pattern: /^\/emulator\/faults$/,
      handler: async (req) => {
        const body = await readJsonBody(req);
        const problem = faultsProblem(body);
        if (problem !== undefined) throw new HttpError(400, 'CR_EMU_ERR_BAD_REQUEST', problem);
        applyFaults(ctx, { ...ctx.faults, ...(body as Partial<EmulatorFaults>) });
        return { status: 200, body: ctx.faults };
      },
    },
    { method: 'GET', pattern: /^\/healthz$/, handler: () => ({ status: 200, body: { ok: true } }) },
  ];
}

/** Dispatches a request to the first matching route; unknown paths are 404, wrong methods 405. */
export async function dispatch(
  routes: Route[],
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  try {
    let pathMatched = false;
    for (const route of routes) {
      const match = route.pattern.exec(url.pathname);
      if (match === null) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      const result = await route.handler(req, match.slice(1), url);
      sendJson(res, result.status, result.body, result.headers);
      return;
    }
    throw pathMatched
      ? new HttpError(405, 'CR_EMU_ERR_BAD_REQUEST', `method ${req.method ?? '?'} not allowed`)
      : new HttpError(404, 'CR_EMU_ERR_NOT_FOUND', 'no such route');
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError)
      sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
    else if (err instanceof URIError)
      sendJson(res, 400, { error: { code: 'CR_EMU_ERR_BAD_REQUEST', message: 'malformed path' } });
    else sendJson(res, 500, { error: { code: 'CR_EMU_ERR_INTERNAL', message: 'internal error' } });
  }
}

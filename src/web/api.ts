/**
 * The dashboard's client of the service's API: every call carries the key the user pasted; a refusal
 * becomes an `ApiError` with the problem's code and detail. EventSource cannot send a header, so the
 * job's Server-Sent Events are read with fetch.
 */

export interface Counts {
  total: number;
  reset: number;
  verified: number;
  failed: number;
  skipped: number;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface FlowControl {
  mode: 'adaptive' | 'fixed' | 'none';
  rate?: number | null;
  ceiling?: number | null;
  refused?: number;
  cuts?: number;
  inFlightLimit: number;
}

export interface Job {
  id: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  tenant: string;
  bot: string;
  dryRun: boolean;
  reason: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  counts: Counts;
  done: number;
  rate: number;
  etaSec: number | null;
  pace: number | null;
  latencyMs: Percentiles;
  errors: Record<string, number>;
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  recent: { sessions: number; latencyMs: Percentiles } | null;
  flowControl: FlowControl | null;
}

export interface KeyInfo {
  id: string;
  scopes: string[];
  boundTo: string[];
  tenants: string[];
  lacks: string[];
}

export interface Preview {
  tenant: string;
  bot: string;
  transport: string;
  count: number;
  dryRun: boolean;
  maxDurationSec: number;
  plan: {
    stateClearMatrix: Record<string, string>;
    contextWipeDirective: Record<string, boolean>;
    cleared: string[];
    kept: string[];
    notClearable: string[];
  };
  directives: { sessionId: string; frame: string }[];
}

export interface Verification {
  ok: boolean;
  records: number;
  headSeq?: number;
  headHash?: string;
  problem: { seq: number; sessionId: string | null; problem: string } | null;
}

export const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Call = (path: string, init?: RequestInit) => Promise<Response>;

/** A caller bound to one key. */
export function client(key: string): Call {
  return async (path, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${key}`);
    const res = await fetch(path, { ...init, headers });
    if (!res.ok) {
      const problem = (await res.json().catch(() => ({}))) as { code?: string; detail?: string };
      const code = problem.code ?? `HTTP ${res.status}`;
      throw new ApiError(res.status, code, `${code}: ${problem.detail ?? res.statusText}`);
    }
    return res;
  };
}

export async function getJson<T>(call: Call, path: string, init?: RequestInit): Promise<T> {
  return (await (await call(path, init)).json()) as T;
}

/** The events of a Server-Sent Events response, as they come. */
export async function* serverEvents(res: Response): AsyncGenerator<{ event: string; data: string }> {
  if (res.body === null) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        yield { event, data: data.join('\n') };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

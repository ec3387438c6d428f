/**
 * The REST API reads that complete a row where OData lacks a field: an endpoint's Flow and entrypoint
 * (`GET /new/v2.0/endpoints/{id}`) and a Flow's reference id (`GET /new/v2.0/flows/{id}`). Each id is read
 * once per run (a selector touches a handful of endpoints and Flows, never one per session).
 */
import { CognigyResetError } from '../errors.js';
import { checkedUrl } from '../util/loopback.js';

export interface RestLookupOptions {
  /** The REST API base (`https://api-trial.cognigy.ai`). */
  apiUrl: string;
  apiKey: string;
  allowInsecure?: boolean;
  timeoutMs?: number;
}

export class RestLookup {
  readonly #base: string;
  readonly #key: string;
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, Promise<Record<string, unknown>>>();

  constructor(options: RestLookupOptions) {
    const url = checkedUrl(options.apiUrl, 'apiUrl', ['https', 'http'], options.allowInsecure ?? false);
    url.search = '';
    this.#base = url.toString().replace(/\/+$/, '');
    this.#key = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The endpoint's Flow reference id and entrypoint. */
  async endpoint(id: string): Promise<{ flowReferenceId: string; entrypoint: string }> {
    const endpoint = await this.#read('endpoints', id);
    const flowId = endpoint['flowId'];
    const entrypoint = endpoint['entrypoint'] ?? endpoint['entryPoint'];
    if (typeof flowId !== 'string' || typeof entrypoint !== 'string') {
      throw new CognigyResetError('CR_ERR_SELECT_BAD_ANSWER', `endpoint ${id}: no flowId or entrypoint`);
    }
    const flow = await this.#read('flows', flowId);
    const referenceId = flow['referenceId'];
    if (typeof referenceId !== 'string') {
      throw new CognigyResetError('CR_ERR_SELECT_BAD_ANSWER', `flow ${flowId}: no referenceId`);
    }
    return { flowReferenceId: referenceId, entrypoint };
  }

  #read(kind: 'endpoints' | 'flows', id: string): Promise<Record<string, unknown>> {
    const key = `${kind}/${id}`;
    let read = this.#cache.get(key);
    if (read === undefined) {
      read = this.#fetch(kind, id);
      this.#cache.set(key, read);
    }
    return read;
  }

  async #fetch(kind: 'endpoints' | 'flows', id: string): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}/new/v2.0/${kind}/${encodeURIComponent(id)}`, {
        headers: { 'x-api-key': this.#key, accept: 'application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (cause) {
      throw new CognigyResetError('CR_ERR_SELECT_LOOKUP', `GET ${kind}/${id}: no connection or no answer`, {
        cause,
      });
    }
    const text = await res.text().catch(() => '');
    if (res.status === 401 || res.status === 403) {
      throw new CognigyResetError('CR_ERR_SELECT_UNAUTHORIZED', `GET ${kind}/${id} answered ${res.status}`, {
        status: res.status,
      });
    }
    if (res.status !== 200) {
      throw new CognigyResetError('CR_ERR_SELECT_LOOKUP', `GET ${kind}/${id} answered ${res.status}`, {
        status: res.status,
      });
    }
    try {
      const body = JSON.parse(text) as unknown;
      if (body !== null && typeof body === 'object' && !Array.isArray(body))
        return body as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new CognigyResetError(
      'CR_ERR_SELECT_BAD_ANSWER',
      `GET ${kind}/${id} answered 200 without an object`,
    );
  }
}

/**
 * A job's sessions from its spec's selector: the rows the tenant's OData data matches
 * (`src/select/`), read page by page. The OData key comes from the job's credentials and never appears in
 * a message; the selector's description (never a key or URL) is what audit records and messages show.
 */
import { CognigyResetError } from '../errors.js';
import type { BulkTarget } from '../reset/bulk.js';
import {
  checkSelector,
  describeSelector,
  ODataClient,
  RestLookup,
  selectSessions,
  type SessionRow,
} from '../select/index.js';
import type { Credentials, JobSpec, JobTargets, SelectorSpec } from './types.js';

/** `flow=REF since=… until=… limit=N`: what audit records and messages show of a selector. */
export function describeSpecSelector(selector: SelectorSpec): string {
  const text = describeSelector(checkSelector(selector));
  return selector.limit === undefined ? text : `${text} limit=${selector.limit}`;
}

export interface SelectRowsOptions {
  signal?: AbortSignal | undefined;
  /** Rows per OData page. @default 1000 */
  pageSize?: number | undefined;
  onRetry?: ConstructorParameters<typeof ODataClient>[0]['onRetry'];
}

/** The rows the spec's selector matches, in batches, at most its `limit`. */
export function selectRows(
  spec: Pick<JobSpec, 'selector' | 'allowInsecure'>,
  credentials: Pick<Credentials, 'odataKey' | 'apiKey'>,
  options: SelectRowsOptions = {},
): AsyncGenerator<SessionRow[]> {
  const selector = spec.selector;
  if (selector === undefined)
    throw new CognigyResetError('CR_ERR_OPT_MISSING', 'selector: the job spec has none', {
      field: 'selector',
    });
  if (credentials.odataKey === undefined || credentials.odataKey === '')
    throw new CognigyResetError('CR_ERR_AUTH_NO_TOKEN', 'selector: no OData key was given', {
      field: 'selector.odataUrl',
    });
  const checked = checkSelector(selector);
  let rest: RestLookup | undefined;
  if (checked.kind === 'endpoint') {
    if (selector.apiUrl === undefined || credentials.apiKey === undefined)
      throw new CognigyResetError(
        'CR_ERR_OPT_MISSING',
        'selector.apiUrl: an endpoint selector reads the endpoint from the REST API, with its API key',
        { field: 'selector.apiUrl' },
      );
    rest = new RestLookup({
      apiUrl: selector.apiUrl,
      apiKey: credentials.apiKey,
      allowInsecure: spec.allowInsecure,
    });
  }
  const odata = new ODataClient({
    url: selector.odataUrl,
    key: credentials.odataKey,
    allowInsecure: spec.allowInsecure,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onRetry === undefined ? {} : { onRetry: options.onRetry }),
  });
  return selectSessions(checked, {
    odata,
    rest,
    limit: selector.limit,
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
  });
}

/**
 * The spec's selector as a job's targets, read as the job goes (its total unknown up front). A job that
 * must resume, or be confirmed by its count, lists the rows first instead (as the service does).
 */
export function selectorTargets(spec: JobSpec, credentials: Credentials): JobTargets {
  return {
    // A stop ends the run's reading of the batches; the listing is not aborted under it.
    batches: () =>
      (async function* (): AsyncGenerator<BulkTarget[]> {
        let index = 0;
        for await (const rows of selectRows(spec, credentials)) {
          yield rows.map((row) => ({
            sessionId: row.sessionId,
            userId: row.userId,
            flowReferenceId: row.flowReferenceId,
            entrypoint: row.entrypoint,
            index: index++,
          }));
        }
      })(),
  };
}

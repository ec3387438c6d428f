/** Selectors: find the sessions to reset in Cognigy's OData analytics data (docs/selectors.md). */
export {
  checkSelector,
  describeSelector,
  reasonWithSelector,
  ROW_FIELDS,
  type Selector,
  type SelectorKind,
  type SessionRow,
} from './selector.js';
export {
  DEFAULT_ODATA_RETRY,
  ODataClient,
  type ODataClientOptions,
  type RetrySettings,
} from './odata-client.js';
export { keysetPages, type KeysetQuery } from './keyset-pages.js';
export { RestLookup, type RestLookupOptions } from './rest-lookup.js';
export { selectSessions, type SelectOptions } from './select-sessions.js';

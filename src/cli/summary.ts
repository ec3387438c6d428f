/** The human summary lives in `reset/summary.ts`, where the demo uses it too; this name stays for importers. */
export { humanSummary } from '../reset/summary.js';

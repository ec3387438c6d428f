/** The retry policy lives in `model/retry-policy.ts`, below the transports; this name stays for importers. */
export * from '../model/retry-policy.js';

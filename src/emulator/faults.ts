/** Fault injection: every fault is an option of `startEmulator` and a flag of `cognigy-reset emulator`. */

export interface EmulatorFaults {
  /** Delay before each answer, in ms. Answers stay in request order. @default 0 */
  latencyMs: number;
  /** Drop a connection (no close frame: the client sees 1006) on every Nth frame it sends. 0 = never. @default 0 */
  dropEveryFrames: number;
  /** Probability, per frame, of dropping the connection instead of answering. @default 0 */
  dropRate: number;
  /** Seed for the random drops and for which seeded sessions block. @default 1 */
  seed: number;
  /** Share of seeded sessions caught in a blocking action (a webhook call). @default 0 */
  blockingShare: number;
  /** How long a blocking action keeps the flow ACTIVE after a reset arrives, in ms. @default 1500 */
  blockingMs: number;
  /** SEND frames per second per tenant before `RATE_LIMITED`. 0 = unlimited. @default 0 */
  messageRate: number;
  /** Handshakes per second per tenant before 429. 0 = unlimited. @default 0 */
  handshakeRate: number;
  /** REST API requests per second per credential before 429 with Retry-After. 0 = unlimited. @default 0 */
  restRate: number;
  /** Every Nth OData request answers 503. 0 = never. @default 0 */
  odataFailEvery: number;
  /** From the Nth OData request after this is set, every one answers 500 (an outage). 0 = never. @default 0 */
  odataFailFrom: number;
  /** 1: answer 500 instead of an empty OData page, as some Cognigy versions do past the end. @default 0 */
  odataEmpty500: number;
  /**
   * Answer this many SEND frames (counted since the start), then hold the answer to every later one
   * until this is set back to 0; the answers behind a held one on its connection wait with it (answers
   * stay in request order). 0 = never. @default 0
   */
  holdAfterSends: number;
}

export const DEFAULT_FAULTS: Readonly<EmulatorFaults> = Object.freeze({
  latencyMs: 0,
  dropEveryFrames: 0,
  dropRate: 0,
  seed: 1,
  blockingShare: 0,
  blockingMs: 1500,
  messageRate: 0,
  handshakeRate: 0,
  restRate: 0,
  odataFailEvery: 0,
  odataFailFrom: 0,
  odataEmpty500: 0,
  holdAfterSends: 0,
});

const LIMITS: Record<keyof EmulatorFaults, { min: number; max: number; integer: boolean }> = {
  latencyMs: { min: 0, max: 60_000, integer: false },
  dropEveryFrames: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true },
  dropRate: { min: 0, max: 1, integer: false },
  seed: { min: 0, max: 2 ** 32 - 1, integer: true },
  blockingShare: { min: 0, max: 1, integer: false },
  blockingMs: { min: 0, max: 3_600_000, integer: false },
  messageRate: { min: 0, max: 1e9, integer: false },
  handshakeRate: { min: 0, max: 1e9, integer: false },
  restRate: { min: 0, max: 1e9, integer: false },
  odataFailEvery: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true },
  odataFailFrom: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true },
  odataEmpty500: { min: 0, max: 1, integer: true },
  holdAfterSends: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true },
};

/** Checks a partial fault set; returns the problem, naming the field, or undefined. */
export function faultsProblem(input: unknown): string | undefined {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return 'faults must be an object';
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(LIMITS, key)) return `unknown fault \`${key}\``;
    const limit = LIMITS[key as keyof EmulatorFaults];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      return `Expected \`${key}\` to be a number, got ${JSON.stringify(value)}`;
    }
    if (value < limit.min || value > limit.max || (limit.integer && !Number.isInteger(value))) {
      return `Expected \`${key}\` to be ${limit.integer ? 'an integer' : 'a number'} in [${limit.min}, ${limit.max}], got ${value}`;
    }
  }
  return undefined;
}

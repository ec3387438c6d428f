export { startEmulator, type Emulator, type EmulatorOptions } from './server.js';
export { DEFAULT_FAULTS, type EmulatorFaults } from './faults.js';
export { SessionStore, sessionView, type SessionRecord, type SessionSpec } from './store.js';
export { DEFAULT_TOKEN, parseTokenFlag, TokenRegistry, type TokenSpec } from './tokens.js';
export type { EmulatorStats } from './stats.js';
export { SEED_ENDPOINTS, SEED_FLOWS, type ExecutedStep, type SeedEndpoint, type SeedFlow } from './steps.js';

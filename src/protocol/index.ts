export * from './constraints.js';
export * from './messages.js';
export * from './codec.js';
export * from './encode.js';
export { resetDirectiveSchema, stateCheckSchema, statusAnswerSchema, stateAnswerSchema } from './schemas.js';

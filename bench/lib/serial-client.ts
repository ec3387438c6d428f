/**
 * What the seed does, in TypeScript: one connection; for each session compile the schema (the seed builds
 * its validator per call), validate the directive, send it and wait, send a state check and wait.
 */
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { WebSocket } from 'ws';
import { resetDirectiveSchema } from '../../src/protocol/index.js';

export async function serialRun(opts: {
  wsUrl: string;
  ids: string[];
}): Promise<{ verified: number; ms: number }> {
  const ws = new WebSocket(`${opts.wsUrl}?tenant=bench&botId=bench&token=dev-token`, 'cognigy-runtime-v1', {
    perMessageDeflate: false,
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse((data as Buffer).toString()))));
  let verified = 0;
  const started = performance.now();
  for (const sessionId of opts.ids) {
    const ajv = new Ajv({ strict: true });
    addFormats.default(ajv, ['date-time']);
    const validate = ajv.compile(resetDirectiveSchema);
    const directive = {
      type: 'SEND',
      sessionId,
      stateClearMatrix: { flowState: 'RESET', dialogState: 'COLD', engineState: 'INITIALIZED' },
      contextWipeDirective: { clearVariables: true, clearHistory: true, clearNLUContext: true },
      maxDurationSec: 900,
      timestamp: new Date().toISOString(),
    };
    if (!validate(directive)) throw new Error('invalid directive');
    const ack = next();
    ws.send(JSON.stringify(directive));
    if ((await ack)['status'] !== 'RESET_COMPLETE') continue;
    const state = next();
    ws.send(JSON.stringify({ type: 'QUERY', sessionId, request: 'STATE_CHECK' }));
    const answer = await state;
    if (answer['flowState'] === 'RESET' && Object.keys(answer['variables'] as object).length === 0)
      verified++;
  }
  const ms = performance.now() - started;
  ws.close();
  return { verified, ms };
}

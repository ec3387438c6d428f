import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkResetDirective,
  compileDirective,
  decodeAnswer,
  decodeClientFrame,
  encodeFrame,
  stateCheck,
} from '../src/protocol/index.js';
import { planReset } from '../src/model/plan.js';

const base = () => ({
  type: 'SEND',
  sessionId: 'session-1',
  stateClearMatrix: { flowState: 'RESET', dialogState: 'COLD', engineState: 'INITIALIZED' },
  contextWipeDirective: { clearVariables: true, clearHistory: true, clearNLUContext: true },
  maxDurationSec: 900,
  timestamp: '2026-11-24T10:00:00Z',
});

type Directive = ReturnType<typeof base> & Record<string, unknown>;
const edit = (fn: (d: Directive) => void): Directive => {
  const d = base() as Directive;
  fn(d);
  return d;
};

describe('reset directive validation', () => {
  const valid: [string, Directive][] = [
    ['the seed directive', base()],
    ['flow only', edit((d) => (d.stateClearMatrix = { flowState: 'RESET' } as never))],
    ['no maxDurationSec', edit((d) => delete (d as Partial<Directive>).maxDurationSec)],
    ['maxDurationSec at 60', edit((d) => (d.maxDurationSec = 60))],
    ['maxDurationSec at 3600', edit((d) => (d.maxDurationSec = 3600))],
    [
      'no clearNLUContext',
      edit(
        (d) => delete (d.contextWipeDirective as Partial<Directive['contextWipeDirective']>).clearNLUContext,
      ),
    ],
    [
      'all wipes false',
      edit((d) => (d.contextWipeDirective = { clearVariables: false, clearHistory: false } as never)),
    ],
    ['a requestId', edit((d) => (d.requestId = 'r-1'))],
    ['a 256-character session id', edit((d) => (d.sessionId = 'x'.repeat(256)))],
    ['a session id with spaces and unicode', edit((d) => (d.sessionId = 'sitzung 42 ü'))],
    ['a timestamp with fraction and offset', edit((d) => (d.timestamp = '2026-11-24T10:00:00.123+02:00'))],
  ];
  for (const [name, directive] of valid) {
    it(`accepts ${name}`, () => {
      assert.equal(checkResetDirective(directive), undefined);
      const decoded = decodeClientFrame(JSON.stringify(directive));
      assert.equal(decoded.ok, true);
    });
  }

  const invalid: [string, Directive, string, string][] = [
    ['an empty session id', edit((d) => (d.sessionId = '')), 'sessionId', 'CR_ERR_PROTO_INVALID_FIELD'],
    [
      'a 257-character session id',
      edit((d) => (d.sessionId = 'x'.repeat(257))),
      'sessionId',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a session id with a newline',
      edit((d) => (d.sessionId = 'a\nb')),
      'sessionId',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a session id with NUL',
      edit((d) => (d.sessionId = 'a\u0000b')),
      'sessionId',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a numeric session id',
      edit((d) => (d.sessionId = 42 as never)),
      'sessionId',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a missing session id',
      edit((d) => delete (d as Partial<Directive>).sessionId),
      'sessionId',
      'CR_ERR_PROTO_MISSING_FIELD',
    ],
    [
      'an empty matrix',
      edit((d) => (d.stateClearMatrix = {} as never)),
      'stateClearMatrix',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'an unknown matrix key',
      edit((d) => ((d.stateClearMatrix as Record<string, string>)['memory'] = 'WIPE')),
      'stateClearMatrix.memory',
      'CR_ERR_PROTO_UNKNOWN_FIELD',
    ],
    [
      'a wrong flowState value',
      edit((d) => (d.stateClearMatrix.flowState = 'STOP')),
      'stateClearMatrix.flowState',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a wrong dialogState value',
      edit((d) => (d.stateClearMatrix.dialogState = 'WARM')),
      'stateClearMatrix.dialogState',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a wrong engineState value',
      edit((d) => (d.stateClearMatrix.engineState = 'RUNNING')),
      'stateClearMatrix.engineState',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a matrix that is an array',
      edit((d) => (d.stateClearMatrix = [] as never)),
      'stateClearMatrix',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'clearHistory missing',
      edit((d) => delete (d.contextWipeDirective as Partial<Directive['contextWipeDirective']>).clearHistory),
      'contextWipeDirective.clearHistory',
      'CR_ERR_PROTO_MISSING_FIELD',
    ],
    [
      'clearVariables a string',
      edit((d) => (d.contextWipeDirective.clearVariables = 'yes' as never)),
      'contextWipeDirective.clearVariables',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'clearNLUContext a number',
      edit((d) => (d.contextWipeDirective.clearNLUContext = 1 as never)),
      'contextWipeDirective.clearNLUContext',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'an extra wipe key',
      edit((d) => ((d.contextWipeDirective as Record<string, boolean>)['clearAll'] = true)),
      'contextWipeDirective.clearAll',
      'CR_ERR_PROTO_UNKNOWN_FIELD',
    ],
    [
      'maxDurationSec 59',
      edit((d) => (d.maxDurationSec = 59)),
      'maxDurationSec',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'maxDurationSec 3601',
      edit((d) => (d.maxDurationSec = 3601)),
      'maxDurationSec',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'maxDurationSec 90.5',
      edit((d) => (d.maxDurationSec = 90.5)),
      'maxDurationSec',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'maxDurationSec a string',
      edit((d) => (d.maxDurationSec = '900' as never)),
      'maxDurationSec',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a timestamp without zone',
      edit((d) => (d.timestamp = '2026-11-24T10:00:00')),
      'timestamp',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a timestamp that is not a date',
      edit((d) => (d.timestamp = 'yesterday')),
      'timestamp',
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    [
      'a missing timestamp',
      edit((d) => delete (d as Partial<Directive>).timestamp),
      'timestamp',
      'CR_ERR_PROTO_MISSING_FIELD',
    ],
    [
      'an unknown top-level key',
      edit((d) => (d.priority = 'high')),
      'priority',
      'CR_ERR_PROTO_UNKNOWN_FIELD',
    ],
    [
      'a __proto__ key',
      edit((d) => Object.defineProperty(d, '__proto__', { value: { polluted: true }, enumerable: true })),
      '__proto__',
      'CR_ERR_PROTO_UNKNOWN_FIELD',
    ],
    ['an empty requestId', edit((d) => (d.requestId = '')), 'requestId', 'CR_ERR_PROTO_INVALID_FIELD'],
  ];
  for (const [name, directive, field, code] of invalid) {
    it(`rejects ${name}, naming \`${field}\``, () => {
      const error = checkResetDirective(directive);
      assert.ok(error !== undefined, 'expected a validation error');
      assert.equal(error.code, code);
      assert.equal(error.field, field);
      const decoded = decodeClientFrame(JSON.stringify(directive));
      assert.equal(decoded.ok, false);
      if (!decoded.ok) {
        assert.equal(decoded.error.field, field);
        assert.match(decoded.error.message, new RegExp(field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      }
    });
  }

  it('says what was expected and what came', () => {
    const error = checkResetDirective(edit((d) => (d.maxDurationSec = 59)));
    assert.equal(error?.message, 'Expected `maxDurationSec` to be >= 60, got 59 (number)');
  });
});

describe('client frame decoding survives garbage', () => {
  const garbage: [string, string | Buffer, string][] = [
    ['not JSON', '{"type":', 'CR_ERR_PROTO_NOT_JSON'],
    ['an empty frame', '', 'CR_ERR_PROTO_NOT_JSON'],
    ['a JSON array', '[1,2,3]', 'CR_ERR_PROTO_NOT_OBJECT'],
    ['a JSON string', '"SEND"', 'CR_ERR_PROTO_NOT_OBJECT'],
    ['null', 'null', 'CR_ERR_PROTO_NOT_OBJECT'],
    ['a frame with no type', '{"sessionId":"a"}', 'CR_ERR_PROTO_MISSING_FIELD'],
    ['an unknown type', '{"type":"DELETE","sessionId":"a"}', 'CR_ERR_PROTO_UNKNOWN_TYPE'],
    ['a type that is an object', '{"type":{"$ne":null}}', 'CR_ERR_PROTO_UNKNOWN_TYPE'],
    [
      'a 10 MB string',
      `{"type":"SEND","sessionId":"${'a'.repeat(10 * 1024 * 1024)}"}`,
      'CR_ERR_PROTO_FRAME_TOO_BIG',
    ],
    [
      'nesting 10,000 deep',
      JSON.stringify(base()).replace('"session-1"', `${'['.repeat(10_000)}${']'.repeat(10_000)}`),
      'CR_ERR_PROTO_INVALID_FIELD',
    ],
    ['invalid UTF-8 bytes', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'CR_ERR_PROTO_NOT_JSON'],
    [
      'a constructor key',
      '{"type":"QUERY","sessionId":"a","request":"STATE_CHECK","constructor":{"prototype":{}}}',
      'CR_ERR_PROTO_UNKNOWN_FIELD',
    ],
  ];
  for (const [name, raw, code] of garbage) {
    it(`answers ${name} with ${code}`, () => {
      const decoded = decodeClientFrame(raw);
      assert.equal(decoded.ok, false);
      if (!decoded.ok) assert.equal(decoded.error.code, code);
    });
  }

  it('leaves Object.prototype untouched by __proto__ keys', () => {
    decodeClientFrame('{"__proto__":{"polluted":true},"type":"SEND"}');
    decodeAnswer('{"__proto__":{"polluted":true},"status":"RESET_COMPLETE"}');
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});

describe('engine answers', () => {
  it('decodes the bare RESET_COMPLETE shape', () => {
    assert.deepEqual(decodeAnswer('{"status":"RESET_COMPLETE"}'), {
      ok: true,
      value: { kind: 'status', status: 'RESET_COMPLETE' },
    });
  });

  it('decodes the bare state shape and ignores fields it does not know', () => {
    const decoded = decodeAnswer('{"flowState":"RESET","variables":{},"extra":1,"__proto__":{"x":1}}');
    assert.deepEqual(decoded, { ok: true, value: { kind: 'state', flowState: 'RESET', variables: {} } });
  });

  it('keeps retryAfterMs, requestId and the optional state fields', () => {
    const rate = decodeAnswer('{"status":"RATE_LIMITED","retryAfterMs":250,"requestId":"r1"}');
    assert.deepEqual(rate, {
      ok: true,
      value: { kind: 'status', status: 'RATE_LIMITED', retryAfterMs: 250, requestId: 'r1' },
    });
    const state = decodeAnswer(
      '{"flowState":"ACTIVE","variables":{"a":1},"historyLength":3,"nluContext":null,"dialogState":"WARM"}',
    );
    assert.ok(state.ok && state.value.kind === 'state');
    assert.deepEqual(
      [state.value.historyLength, state.value.nluContext, state.value.dialogState],
      [3, null, 'WARM'],
    );
  });

  const bad: [string, string][] = [
    ['not JSON', 'RESET_COMPLETE'],
    ['neither shape', '{"ok":true}'],
    ['variables that are not an object', '{"flowState":"RESET","variables":[]}'],
    ['a numeric status', '{"status":200}'],
    ['a negative retryAfterMs', '{"status":"RATE_LIMITED","retryAfterMs":-1}'],
  ];
  for (const [name, raw] of bad) {
    it(`rejects an answer with ${name} as CR_ERR_PROTO_BAD_ANSWER`, () => {
      const decoded = decodeAnswer(raw);
      assert.equal(decoded.ok, false);
      if (!decoded.ok) assert.equal(decoded.error.code, 'CR_ERR_PROTO_BAD_ANSWER');
    });
  }
});

describe('encodeFrame', () => {
  it('encodes a SEND and a QUERY as JSON.stringify would, and the engine decodes both back', () => {
    const now = new Date('2026-01-02T03:04:05Z');
    for (const plan of [planReset(), planReset({ flowOnly: true }), planReset({ keepHistory: true })]) {
      for (const requestId of [undefined, 'r-"1"']) {
        const { directive, text } = compileDirective('s-ü"\\1', plan, { requestId, now });
        assert.equal(text, JSON.stringify(directive));
        // The same plan's objects again: the cached parts give the same text.
        assert.equal(encodeFrame(directive), text);
        assert.deepEqual(decodeClientFrame(text), { ok: true, value: directive });
        const query = stateCheck('s-ü"\\1', requestId);
        assert.equal(encodeFrame(query), JSON.stringify(query));
        assert.deepEqual(decodeClientFrame(encodeFrame(query)), { ok: true, value: query });
      }
    }
  });

  it('refuses to encode a frame over 64 KiB', () => {
    const directive = { ...base(), type: 'SEND' as const, requestId: 'x'.repeat(70 * 1024) };
    assert.throws(() => encodeFrame(directive as never), { code: 'CR_ERR_PROTO_FRAME_TOO_BIG' });
  });
});

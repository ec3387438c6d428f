import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CATALOGUE } from '../src/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map(
  [...doc.matchAll(/^\| `([A-Z_]+)` \| (\w+) \| (yes|no) \|/gm)].map((m) => [
    m[1]!,
    { kind: m[2], retryable: m[3] === 'yes' },
  ]),
);

describe('docs/errors.md', () => {
  it('lists every code of the catalogue with its kind and retryability', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      assert.deepEqual(
        rows.get(code),
        { kind: entry.kind, retryable: entry.retryable },
        `docs/errors.md row for ${code}`,
      );
    }
  });

  it('lists no code the catalogue lacks', () => {
    const extra = [...rows.keys()].filter((code) => !Object.hasOwn(ERROR_CATALOGUE, code));
    assert.deepEqual(extra, []);
  });

  it('uses the CR_ERR_<AREA>_<WHAT> and CR_EMU_ERR_<WHAT> shapes', () => {
    for (const code of Object.keys(ERROR_CATALOGUE)) {
      assert.match(
        code,
        /^(CR_ERR_(OPT|PROTO|AUTH|TRANSPORT|RESET|AUDIT|STATE|CLI|SELECT)_[A-Z_]+|CR_EMU_ERR_[A-Z_]+)$/,
      );
    }
  });
});

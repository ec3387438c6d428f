import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  type CatalogueEntry,
  codesMarked,
  ERROR_CATALOGUE,
  type ErrorMark,
  httpStatusOf,
  isMarked,
  KIND_HTTP_STATUS,
} from '../src/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map(
  [...doc.matchAll(/^\| `([A-Z_]+)` \| (\w+) \| (yes|no) \| (\d{3}) \|/gm)].map((m) => [
    m[1]!,
    { kind: m[2], retryable: m[3] === 'yes', http: Number(m[4]) },
  ]),
);

/** The codes the page lists under a mark: `- **fatal**, ...: `CODE`, `CODE`.` */
function documentedMark(mark: ErrorMark): string[] {
  const line = doc.split('\n').find((l) => l.startsWith(`- **${mark}**,`));
  assert.ok(line, `docs/errors.md names the codes marked ${mark}`);
  return [...line.matchAll(/`(CR_[A-Z_]+)`/g)].map((m) => m[1]!);
}

describe('docs/errors.md', () => {
  it('lists every code of the catalogue with its kind, retryability and HTTP status', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      assert.deepEqual(
        rows.get(code),
        { kind: entry.kind, retryable: entry.retryable, http: httpStatusOf(code) },
        `docs/errors.md row for ${code}`,
      );
    }
  });

  it("gives each code its kind's HTTP status unless the catalogue names another, and the kinds' table agrees", () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE) as [string, CatalogueEntry][]) {
      assert.equal(httpStatusOf(code), entry.http ?? KIND_HTTP_STATUS[entry.kind], code);
      assert.ok(httpStatusOf(code) >= 400 && httpStatusOf(code) <= 599, code);
    }
    for (const [kind, status] of Object.entries(KIND_HTTP_STATUS)) {
      assert.match(doc, new RegExp(`^\\| ${kind} \\| ${status} \\|`, 'm'), `the HTTP status of kind ${kind}`);
    }
    assert.equal(httpStatusOf('CR_ERR_RESET_SESSION_NOT_FOUND'), 404);
    assert.equal(httpStatusOf('CR_ERR_STATE_JOB_RUNNING'), 409);
    assert.equal(httpStatusOf('CR_ERR_RESET_RATE_LIMITED'), 429);
    assert.equal(httpStatusOf('CR_ERR_AUTH_FORBIDDEN'), 403);
    assert.equal(httpStatusOf('NOT_A_CODE'), 500);
  });

  it('lists the codes of each mark the code acts on, as the catalogue marks them', () => {
    const marks: ErrorMark[] = [
      'fatal',
      'unreachable',
      'rateLimited',
      'blamesOneRequest',
      'answerLost',
      'storeLost',
    ];
    for (const mark of marks) {
      const marked = [...codesMarked(mark)];
      assert.ok(marked.length > 0, mark);
      assert.deepEqual(documentedMark(mark).sort(), marked.sort(), `docs/errors.md, mark ${mark}`);
      for (const code of marked) assert.equal(isMarked(code, mark), true);
    }
    assert.equal(isMarked(undefined, 'fatal'), false);
    assert.equal(isMarked('CR_ERR_RESET_SESSION_NOT_FOUND', 'fatal'), false);
  });

  it('lists no code the catalogue lacks', () => {
    const extra = [...rows.keys()].filter((code) => !Object.hasOwn(ERROR_CATALOGUE, code));
    assert.deepEqual(extra, []);
  });

  it('uses the CR_ERR_<AREA>_<WHAT> and CR_EMU_ERR_<WHAT> shapes', () => {
    for (const code of Object.keys(ERROR_CATALOGUE)) {
      assert.match(
        code,
        /^(CR_ERR_(OPT|PROTO|AUTH|TRANSPORT|RESET|AUDIT|STATE|CLI|SELECT|API)_[A-Z_]+|CR_EMU_ERR_[A-Z_]+)$/,
      );
    }
  });
});

/**
 * `audit export --format csv` emits no raw control character (issue 14 §5, safe echoes): a cell never
 * breaks a line-based reader, moves a terminal's cursor or reorders text, and still reads back as it was.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvCell } from '../src/audit/store.js';

/** Reads a cell's text back: the `\uXXXX` and `\\` escapes undone. */
function unescape(cell: string): string {
  return cell.replace(/\\(\\|u([0-9a-f]{4}))/g, (_m, c: string, hex?: string) =>
    hex === undefined ? c : String.fromCharCode(parseInt(hex, 16)),
  );
}

describe('a CSV cell', () => {
  const hostile = [
    ['a line feed', 'a\nb'],
    ['a carriage return', 'a\rb'],
    ['an escape sequence (clear the screen)', 'a\u001b[2Jb'],
    ['a tab and a NUL', 'a\tb\u0000c'],
    ['DEL and a C1 control (CSI)', 'a\u007fb\u009bc'],
    ['the line and paragraph separators', 'a\u2028b\u2029c'],
    ['a right-to-left override', 'invoice\u202Egpj.exe'],
    ['an isolate and a mark', 'a\u2066b\u2069c\u200f'],
    ['a zero-width space and a lone surrogate', 'a\u200bb\ud800c'],
  ] as const;
  for (const [what, text] of hostile) {
    it(`holds no raw ${what}, and reads back as it was`, () => {
      const cell = csvCell(text);
      assert.doesNotMatch(cell, /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
      assert.equal(unescape(cell), text);
    });
  }

  it('keeps a backslash unambiguous: a literal "\\u001b" is not read back as an escape', () => {
    const text = 'C:\\temp \\u001b';
    assert.equal(csvCell(text), 'C:\\\\temp \\\\u001b');
    assert.equal(unescape(csvCell(text)), text);
  });

  it('still neutralises a formula, also one that starts after an escaped control character', () => {
    assert.equal(csvCell('=1+1'), "'=1+1");
    assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvCell('\t=1+1'), '\\u0009=1+1');
    assert.equal(csvCell('=A1,"x"'), `"'=A1,""x"""`);
  });

  it('leaves ordinary text, lists and empty values as they were', () => {
    assert.equal(csvCell('session-1'), 'session-1');
    assert.equal(csvCell(['flow', 'dialog']), 'flow dialog');
    assert.equal(csvCell(null), '');
    assert.equal(csvCell('café – ok'), 'café – ok');
  });
});

/**
 * UTF-8 decoding that never rewrites. Node's decoder turns each invalid byte into U+FFFD, after which an
 * id no file holds would be sent, reset and audited. Here an invalid byte becomes a lone surrogate
 * (U+DC80 + byte, as Python's `surrogateescape` does): valid UTF-8 never decodes to one, so a line that
 * holds one is known to be invalid, and the bytes can still be shown.
 */
import { isUtf8 } from 'node:buffer';

/** The length of the valid UTF-8 sequence at `i` (RFC 3629: no overlongs, surrogates or > U+10FFFF), or 0. */
function sequenceAt(bytes: Uint8Array, i: number): number {
  const b = bytes[i]!;
  if (b < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    const c = bytes[i + k];
    return c !== undefined && c >= lo && c <= hi;
  };
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    const lo = b === 0xe0 ? 0xa0 : 0x80;
    const hi = b === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    const lo = b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Decodes `bytes`, each byte of an invalid sequence as a lone surrogate U+DC80 + byte. */
function decodeEscaped(bytes: Buffer): string {
  let out = '';
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceAt(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += bytes.toString('utf8', start, i) + String.fromCharCode(0xdc00 + bytes[i]!);
    i++;
    start = i;
  }
  return out + bytes.toString('utf8', start, i);
}

/** How many bytes at the end of `bytes` begin a sequence the next chunk may complete. */
function openTail(bytes: Buffer): number {
  for (let k = 1; k <= Math.min(3, bytes.length); k++) {
    const b = bytes[bytes.length - k]!;
    if (b >= 0x80 && b <= 0xbf) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > k ? k : 0;
  }
  return 0;
}

/**
 * The text of a byte stream, chunk by chunk, decoded strictly (see above). A stream that already yields
 * strings (an encoding was set on it) is passed through as it is.
 */
export async function* strictUtf8(input: NodeJS.ReadableStream): AsyncGenerator<string> {
  let carry: Buffer | undefined;
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    if (typeof chunk === 'string') {
      yield chunk;
      continue;
    }
    let bytes = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
    const tail = openTail(bytes);
    carry = tail > 0 ? bytes.subarray(bytes.length - tail) : undefined;
    if (tail > 0) bytes = bytes.subarray(0, bytes.length - tail);
    yield isUtf8(bytes) ? bytes.toString('utf8') : decodeEscaped(bytes);
  }
  // A sequence cut off by the end of the input is invalid.
  if (carry !== undefined) yield decodeEscaped(carry);
}

const ESCAPED_BYTE = /[\uDC80-\uDCFF]/u;

/**
 * Why `text` (decoded by `strictUtf8`) is not valid UTF-8, naming the first bad byte and its character
 * position; undefined when it is valid.
 */
export function notUtf8Problem(text: string): string | undefined {
  const match = ESCAPED_BYTE.exec(text);
  if (match === null) return undefined;
  const byte = match[0].charCodeAt(0) - 0xdc00;
  const column = [...text.slice(0, match.index)].length + 1;
  return `is not valid UTF-8 (byte 0x${byte.toString(16).toUpperCase()} at character ${column})`;
}

/** `text` with each invalid byte written as `\xNN`, for a message or a failed outcome's id. */
export function showEscapedBytes(text: string): string {
  return text.replace(
    /[\uDC80-\uDCFF]/gu,
    (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16).toUpperCase()}`,
  );
}

import * as crypto from 'node:crypto';

/** One-shot SHA-256 (`crypto.hash`, Node >= 20.12) where there is one; a Hash object otherwise. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** SHA-256 of a text's UTF-8 bytes, as lowercase hex. */
export function sha256(text: string): string {
  return oneShot !== undefined
    ? oneShot('sha256', text, 'hex')
    : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

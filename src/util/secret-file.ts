/**
 * A secret's file, read whole but bounded: a token, a key or a password is short, and a path that names
 * a device or a huge file (`/dev/zero`) must fail, not fill the memory.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** The most a secret file may hold. */
export const SECRET_FILE_MAX = 64 * 1024;

/** The file's text, trimmed; `undefined` when it holds more than `SECRET_FILE_MAX` bytes. Throws as `openSync`. */
export function readSecretText(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(SECRET_FILE_MAX + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > SECRET_FILE_MAX) return undefined;
    }
    return buffer.toString('utf8', 0, length).trim();
  } finally {
    closeSync(fd);
  }
}

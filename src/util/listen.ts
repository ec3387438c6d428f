/** Listening on a port the user named, with a clear, stable error when it cannot be had. */
import type { Server } from 'node:net';
import { CognigyResetError } from '../errors.js';

/**
 * Listens on host:port; a port in use or not permitted is the user's to change (`CR_ERR_OPT_LISTEN`,
 * naming the option that chose it), not an internal error.
 */
export function listenOn(server: Server, port: number, host: string, option: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'the address is in use'
          : err.code === 'EACCES'
            ? 'not permitted'
            : err.code === 'EADDRNOTAVAIL'
              ? 'no such local address'
              : (err.code ?? err.message);
      const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      reject(
        new CognigyResetError('CR_ERR_OPT_LISTEN', `cannot listen on ${where} (${option}): ${why}`, {
          field: option,
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** What the Socket endpoint's answers, or their absence after an input went out, become as coded errors. */
import { CognigyResetError, isMarked } from '../../errors.js';

/** The largest Socket.IO frame the client takes (Engine.IO `maxPayload`): a bigger one ends the session. */
export const SOCKET_FRAME_MAX = 1024 * 1024;

/**
 * Whether a transport error is `ws` refusing a frame past `maxPayload`: the error itself, or the error
 * event that carries it (as Engine.IO hands it on).
 */
export function frameTooBig(description: unknown): boolean {
  const event = description as { code?: unknown; error?: { code?: unknown } } | null | undefined;
  const code = event?.code ?? event?.error?.code;
  return code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
}

/** The coded error of a frame past the bound: an answer of ours to a hostile endpoint, not retried. */
frameTooBig.error = (where: string): CognigyResetError =>
  new CognigyResetError(
    'CR_ERR_TRANSPORT_SOCKET_TOO_BIG',
    `${where} sent a frame larger than ${SOCKET_FRAME_MAX} bytes: the connection was closed`,
  );

/**
 * What a failure after `processInput` went out becomes: a missing answer (a timeout, a dropped connection)
 * is unconfirmed; an answer (an error output, an exception) or an abort stays what it is. None is retried.
 */
export function unconfirmed(err: unknown, where: string): unknown {
  if (err instanceof CognigyResetError && isMarked(err.code, 'answerLost')) {
    return new CognigyResetError(
      'CR_ERR_RESET_UNCONFIRMED',
      `processInput with resetFlow was sent to ${where}, but its answer never came (${err.message}): ` +
        'the Flow may or may not have restarted, and it is not sent again (each send starts the Flow once more)',
      { cause: err },
    );
  }
  return err;
}

/** An `error` output: 1002 is an unknown session, 1008 an internal error, anything else an error. */
export function outputError(code: unknown, message: string): CognigyResetError {
  if (code === 1002) {
    return new CognigyResetError('CR_ERR_RESET_SESSION_NOT_FOUND', `${message} (Cognigy code 1002)`, {
      cognigyCode: 1002,
    });
  }
  if (code === 1008) {
    return new CognigyResetError('CR_ERR_TRANSPORT_SOCKET_SERVER', `${message} (Cognigy code 1008)`, {
      cognigyCode: 1008,
    });
  }
  return new CognigyResetError(
    'CR_ERR_TRANSPORT_SOCKET_ERROR',
    message,
    typeof code === 'number' ? { cognigyCode: code } : {},
  );
}

/**
 * Corks a WebSocket's TCP socket for the rest of the current tick, so the many frames written in one tick
 * (pipelined requests, or their answers) leave in one write instead of one syscall each. `ws` keeps its
 * socket private: reach it only if it is there, and do without otherwise.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

export class TickCork {
  readonly #socket: Socket | undefined;
  #corked = false;

  constructor(ws: WebSocket) {
    const socket = (ws as unknown as { _socket?: unknown })._socket;
    this.#socket =
      socket !== null && typeof socket === 'object' && 'cork' in socket ? (socket as Socket) : undefined;
  }

  /** Call before each write; the socket is uncorked when the tick ends. */
  cork(): void {
    const socket = this.#socket;
    if (socket === undefined || this.#corked) return;
    this.#corked = true;
    socket.cork();
    process.nextTick(() => {
      this.#corked = false;
      socket.uncork();
    });
  }
}

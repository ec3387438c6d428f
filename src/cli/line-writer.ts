/**
 * Output lines gathered and written once per turn of the event loop (or every 64 KiB): at a bulk run's
 * rate, one write a line would cost more than the resets. A line is only ever
 * handed in after its outcome is durable, so a crash can lose a report, never a record.
 *
 * A reader slower than the producer is waited for (`drained()`): where stdout is asynchronous (a socket; a
 * pipe on macOS) the text would otherwise pile up in memory, a line per outcome of a million-id run.
 */
import type { Writable } from 'node:stream';
import { ABANDONED } from './stdout-gone.js';

/** About the most text kept, while the stream is behind, to be written elsewhere if it is abandoned. */
const UNSENT_MAX = 1024 * 1024;

export class LineWriter {
  readonly #stream: Writable;
  readonly #gone: AbortSignal | undefined;
  #buffer = '';
  #scheduled = false;
  #closed = false;
  /** Text handed to the stream that it has not written yet. */
  #unsent: string[] = [];
  #unsentLength = 0;

  /**
   * `gone`: aborted when the stream's reader went away (the stream's error event), or with `ABANDONED`
   * when it was given up after a signal: what it had not written then goes to `spill` (stderr) instead.
   */
  constructor(stream: Writable, gone?: AbortSignal, spill: Writable = process.stderr) {
    this.#stream = stream;
    this.#gone = gone;
    gone?.addEventListener(
      'abort',
      () => {
        if (gone.reason !== ABANDONED) return;
        const text = this.#unsent.join('') + this.#buffer;
        this.#unsent = [];
        this.#buffer = '';
        if (text !== '')
          spill.write(`cognigy-reset: what stdout did not take (some of it may have reached it):\n${text}`);
      },
      { once: true },
    );
  }

  write(line: string): void {
    this.#buffer += `${line}\n`;
    if (this.#buffer.length >= 64 * 1024) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Whether the stream's reader went away: what is written now goes nowhere, and is dropped. */
  get closed(): boolean {
    return this.#closed || this.#gone?.aborted === true;
  }

  /** Characters waiting to be written. */
  get pending(): number {
    return this.#buffer.length;
  }

  /**
   * Undefined while the stream keeps up; otherwise resolves once it took what it holds (or its reader went
   * away): the caller waits before producing more.
   */
  drained(): Promise<void> | undefined {
    if (this.closed || !this.#stream.writableNeedDrain) return undefined;
    const stream = this.#stream;
    const gone = this.#gone;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('close', done);
        gone?.removeEventListener('abort', done);
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
      gone?.addEventListener('abort', done);
    });
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#buffer === '') return;
    const text = this.#buffer;
    this.#buffer = '';
    if (this.closed) return;
    if (this.#stream.writableLength === 0) {
      this.#unsent = [];
      this.#unsentLength = 0;
    }
    this.#stream.write(text);
    if (this.#stream.writableLength > 0) {
      // The newest text is kept (the summary is written last): past the bound, the oldest goes.
      this.#unsent.push(text);
      this.#unsentLength += text.length;
      while (this.#unsentLength > UNSENT_MAX && this.#unsent.length > 1)
        this.#unsentLength -= this.#unsent.shift()!.length;
    }
    // A pipe whose reader closed refuses the write at once (EPIPE); its error event comes later.
    if (this.#stream.writable === false) this.#closed = true;
  }
}

/**
 * Output lines gathered and written once per turn of the event loop (or every 64 KiB): at tens of
 * thousands of outcomes a second, one write a line would cost more than the resets. A line is only ever
 * handed in after its outcome is durable, so a crash can lose a report, never a record.
 */
export class LineWriter {
  readonly #stream: NodeJS.WritableStream;
  readonly #gone: AbortSignal | undefined;
  #buffer = '';
  #scheduled = false;
  #closed = false;

  /** `gone`: aborted when the stream's reader went away (the stream's error event). */
  constructor(stream: NodeJS.WritableStream, gone?: AbortSignal) {
    this.#stream = stream;
    this.#gone = gone;
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

  flush(): void {
    this.#scheduled = false;
    if (this.#buffer === '') return;
    const text = this.#buffer;
    this.#buffer = '';
    if (this.closed) return;
    this.#stream.write(text);
    // A pipe whose reader closed refuses the write at once (EPIPE); its error event comes later.
    if (this.#stream.writable === false) this.#closed = true;
  }
}

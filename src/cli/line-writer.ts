/**
 * Output lines gathered and written once per turn of the event loop (or every 64 KiB): at tens of
 * thousands of outcomes a second, one write a line would cost more than the resets. A line is only ever
 * handed in after its outcome is durable, so a crash can lose a report, never a record.
 */
export class LineWriter {
  readonly #stream: NodeJS.WritableStream;
  #buffer = '';
  #scheduled = false;

  constructor(stream: NodeJS.WritableStream) {
    this.#stream = stream;
  }

  write(line: string): void {
    this.#buffer += `${line}\n`;
    if (this.#buffer.length >= 64 * 1024) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
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
    this.#stream.write(text);
  }
}

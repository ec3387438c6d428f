/** A teardown that runs every step whatever the one before threw, and keeps the first failure. */
export class Teardown {
  error: unknown;

  async step(run: () => unknown): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.error ??= err;
    }
  }
}

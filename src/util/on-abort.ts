/**
 * `onAbort(signal, fn)`: like `signal.addEventListener('abort', fn, {once: true})`, but one real listener
 * per signal serves every caller. A bulk run shares one signal among hundreds of thousands of requests,
 * and EventTarget listeners cost microseconds each to add and remove; a Set entry costs next to nothing.
 */
const callbacks = new WeakMap<AbortSignal, Set<() => void>>();

/** Registers `fn` to run once when `signal` aborts; returns the function that unregisters it. */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (signal === undefined) return noop;
  if (signal.aborted) {
    // The event has fired already: run it soon, never before the caller has its unregister function.
    queueMicrotask(fn);
    return noop;
  }
  let set = callbacks.get(signal);
  if (set === undefined) {
    const created = new Set<() => void>();
    set = created;
    callbacks.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        for (const callback of [...created]) callback();
        created.clear();
      },
      { once: true },
    );
  }
  const entry = set;
  entry.add(fn);
  return () => entry.delete(fn);
}

function noop(): void {}

import type { Writable } from 'node:stream';

/**
 * 'error' listeners on output streams that VMs share and outlive (the
 * CLI's stdout, an application's log stream): one listener per stream for
 * the process's life, whatever the number of VMs that wrote to it, so that
 * a VM created in a loop adds none, and an error that arrives after its VM
 * stopped (a last write meeting EPIPE) is not an unhandled 'error' event
 * that ends the process.
 */
const watchers = new WeakMap<Writable, Set<(e: Error) => void>>();

/** Calls `onError` for errors of `stream` until the returned function is called. */
export function watchStreamErrors(stream: Writable, onError: (e: Error) => void): () => void {
  let subscribers = watchers.get(stream);
  if (!subscribers) {
    const set = new Set<(e: Error) => void>();
    stream.on('error', (e: Error) => {
      for (const s of [...set]) s(e);
    });
    watchers.set(stream, set);
    subscribers = set;
  }
  subscribers.add(onError);
  const set = subscribers;
  return () => void set.delete(onError);
}

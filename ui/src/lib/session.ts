import { writable } from 'svelte/store';

export type Screen = 'loading' | 'first_run' | 'unlock' | 'main';
export const screen = writable<Screen>('loading');

/** Work that must be saved before the vault is locked (the open form's pending answers). */
const flushers = new Set<() => Promise<void>>();
export function onBeforeLock(f: () => Promise<void>): () => void {
  flushers.add(f);
  return () => flushers.delete(f);
}

/** Saves what is waiting, but never holds up a lock for more than `ms`. */
export async function flushBeforeLock(ms = 1500): Promise<void> {
  const all = Promise.allSettled([...flushers].map((f) => f()));
  await Promise.race([all, new Promise((r) => setTimeout(r, ms))]);
}

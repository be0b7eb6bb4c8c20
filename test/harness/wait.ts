/**
 * Polls `cond` until it holds; throws naming `what` after `ms` (a bound on the wait, not an
 * assertion on time).
 */
export async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited >= ms) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Ends a client (anything with `end(callback)`): resolves when it has ended, or after `ms` at most. */
export function ended(c: { end(done: () => void): unknown }, ms = 5000): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    c.end(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

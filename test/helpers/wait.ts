// Bounded waits: every wait of a test has a deadline, so a hang fails the test
// instead of stalling the run.

/** Generous bound on one exchange or wait: a hang fails the test instead of stalling it. */
export const BOUND_MS = 10_000

/** Polls `check` every `everyMs` until it holds or `deadlineMs` passes; returns whether it held. */
export async function eventually (check: () => boolean, deadlineMs: number, everyMs = 10): Promise<boolean> {
  const end = Date.now() + deadlineMs
  for (;;) {
    if (check()) return true
    if (Date.now() >= end) return false
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Polls `pred` every `every` ms until it holds; rejects after `ms`, describing what it waited for. */
export async function waitFor (pred: () => boolean, ms: number, what: string | (() => string), every = 10): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise((resolve) => setTimeout(resolve, every))
  }
}

/** `p`, or a rejection naming `what` when it has not settled after `ms`: a bound on waits. */
export function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  return Promise.race([p, bound]).finally(() => clearTimeout(timer))
}

// Errors as values, for assertions on how something failed.

/** The error a promise rejects with; fails the test loudly when it resolves. */
export async function rejection (p: Promise<unknown>): Promise<Error & { code?: string, cause?: unknown }> {
  try {
    await p
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a rejection, but the promise resolved')
}

/** The codes along an error's cause chain, outermost first (`code`, else `name`). */
export function codesOf (err: unknown): string[] {
  const out: string[] = []
  let e = err as { code?: string, name?: string, cause?: unknown } | undefined
  for (let depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    out.push(e.code ?? e.name ?? String(e))
    e = e.cause as typeof e
  }
  return out
}

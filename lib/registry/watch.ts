import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'

// File events are fast but unreliable (editors replace files, network and
// container file systems drop events): a stat poll backs them up.
const POLL_MS = 250
// Writes come in bursts; wait for the file to settle.
const SETTLE_MS = 20

/**
 * Calls `onChange` with the new content when the content of `file` changes:
 * the content compared is the content applied, so no write can slip between
 * them. Changes that arrive while `onChange` runs are coalesced into one more
 * call. Returns a stop function.
 */
export function watchConfig (file: string, onChange: (content: string) => Promise<void>, initial?: string): () => void {
  let last = initial === undefined ? undefined : digest(initial)
  let timer: NodeJS.Timeout | undefined
  let running = false
  let again = false
  let stopped = false

  const run = async (): Promise<void> => {
    if (running) {
      again = true
      return
    }
    running = true
    try {
      do {
        if (stopped) break
        again = false
        const content = await readFile(file, 'utf8').catch(() => undefined)
        if (content === undefined) continue
        const hash = digest(content)
        if (hash === last) continue
        last = hash
        await onChange(content).catch(() => {})
      } while (again)
    } finally {
      running = false
    }
  }
  const schedule = (): void => {
    if (stopped) return
    clearTimeout(timer)
    timer = setTimeout(() => { run().catch(() => {}) }, SETTLE_MS)
  }

  let watcher: FSWatcher | undefined
  try {
    // The folder, not the file: a file replaced by rename is a new inode.
    watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
      if (name === null || name.toString() === basename(file)) schedule()
    })
    watcher.on('error', () => {})
  } catch {
    watcher = undefined
  }
  watchFile(file, { interval: POLL_MS, persistent: false }, schedule)

  return () => {
    stopped = true
    clearTimeout(timer)
    watcher?.close()
    unwatchFile(file, schedule)
  }
}

function digest (content: string): string {
  return createHash('sha256').update(content).digest('hex')
}

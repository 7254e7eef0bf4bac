import { createHash } from 'node:crypto'
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { configText, readBounded } from '../config/load.js'

// File events are fast but unreliable (editors replace files, network and
// container file systems drop events): a stat poll backs them up.
const POLL_MS = 250
// Writes come in bursts; wait for the file to settle.
const SETTLE_MS = 20

/**
 * Calls `onChange` when the content of `file` changes, with a function that
 * gives the new content as text (or throws the ConfigError that refuses it):
 * the content compared is the content applied, so no write can slip between
 * them. A file over 1 MiB is refused unread, once until it changes.
 * Changes that arrive while `onChange` runs are coalesced into one more
 * call. Returns a stop function.
 */
export function watchConfig (file: string, onChange: (content: () => string) => Promise<void>): () => void {
  let last: string | undefined
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
        // A file being replaced may be missing for a moment: the next event tells.
        const read = await readBounded(file).catch(() => undefined)
        if (read === undefined) continue
        const key = 'size' in read ? `too large: ${read.size}` : digest(read.bytes)
        if (key === last) continue
        last = key
        await onChange(() => configText(read)).catch(() => {})
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

function digest (content: Buffer): string {
  return createHash('sha256').update(content).digest('hex')
}

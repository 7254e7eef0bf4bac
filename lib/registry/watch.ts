import { createHash } from 'node:crypto'
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { configText, readBounded } from '../config/load.js'

// File events are fast but unreliable (editors replace files, network and
// container file systems drop events): a stat poll backs them up.
const POLL_MS = 250
// Writes come in bursts; wait for the file to settle.
const SETTLE_MS = 20

export interface WatchOptions {
  /** The content already applied: no reload until the file differs from it. */
  initial?: string
  /**
   * Other files the applied config is built from (keystores, truststores),
   * asked again after each reload since the config names them.
   */
  dependencies?: () => Iterable<string>
  /**
   * Whether a dependency's content differs from what the live config was
   * built from. Asked when one of them changed: its file name may be the
   * same (a renewed certificate), so the config alone would look unchanged.
   */
  stale?: () => boolean
}

/**
 * Calls `onChange` when the content of `file` changes, or when a dependency
 * changed and `stale()` says so, with a function that gives the content as
 * text (or throws the ConfigError that refuses it): the content compared is
 * the content applied, so no write can slip between them. A file over 1 MiB
 * is refused unread, once until it changes. Changes that arrive while
 * `onChange` runs are coalesced into one more call. Returns a stop function.
 */
export function watchConfig (file: string, onChange: (content: () => string) => Promise<void>, options: WatchOptions = {}): () => void {
  let last = options.initial === undefined ? undefined : digest(Buffer.from(options.initial))
  let timer: NodeJS.Timeout | undefined
  let running = false
  let again = false
  let dependencyChanged = false
  let stopped = false
  const dependencies = new Map<string, () => void>()

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
        // Taken before reading: a dependency changing during the reload schedules another run.
        const checkDependencies = dependencyChanged
        dependencyChanged = false
        // A file being replaced may be missing for a moment: the next event tells.
        const read = await readBounded(file).catch(() => undefined)
        if (read === undefined) {
          // Checked again once the config file is back (its event schedules a run).
          dependencyChanged ||= checkDependencies
          continue
        }
        const key = 'size' in read ? `too large: ${read.size}` : digest(read.bytes)
        if (key !== last || (checkDependencies && options.stale?.() === true)) {
          last = key
          await onChange(() => configText(read)).catch(() => {})
        }
        // The live config may name other files, whoever reloaded it last (this watcher or pools.reload()).
        follow()
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
  const scheduleDependency = (): void => {
    dependencyChanged = true
    schedule()
  }

  /** Observes exactly the dependencies of the live config. */
  const follow = (): void => {
    if (stopped || options.dependencies === undefined) return
    const wanted = new Set(options.dependencies())
    for (const [path, stop] of dependencies) {
      if (!wanted.has(path)) {
        stop()
        dependencies.delete(path)
      }
    }
    for (const path of wanted) if (!dependencies.has(path)) dependencies.set(path, observe(path, scheduleDependency))
  }

  const stopConfig = observe(file, schedule)
  follow()

  return () => {
    stopped = true
    clearTimeout(timer)
    stopConfig()
    for (const stop of dependencies.values()) stop()
    dependencies.clear()
  }
}

/** Calls `onEvent` when `file` may have changed. Returns a stop function. */
function observe (file: string, onEvent: () => void): () => void {
  let watcher: FSWatcher | undefined
  try {
    // The folder, not the file: a file replaced by rename is a new inode.
    watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
      if (name === null || name.toString() === basename(file)) onEvent()
    })
    watcher.on('error', () => {})
  } catch {
    watcher = undefined
  }
  // Each observer needs its own listener: unwatchFile removes a listener from every watch of the file.
  const listener = (): void => { onEvent() }
  watchFile(file, { interval: POLL_MS, persistent: false }, listener)
  return () => {
    watcher?.close()
    unwatchFile(file, listener)
  }
}

function digest (content: Buffer): string {
  return createHash('sha256').update(content).digest('hex')
}

import { open } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { decodeConfig } from './encoding.js'
import { ConfigError } from './errors.js'
import { parseConfig, type ParsedConfig } from './parse.js'
import { MAX_CONFIG_BYTES, tooLarge } from './xml.js'

/**
 * The bytes of `path`, or only its size when it is over 1 MiB: the size is
 * that of the open file, so no larger file is ever read into memory.
 * File system errors are thrown as they are.
 */
export async function readBounded (path: string): Promise<{ bytes: Buffer } | { size: number }> {
  const handle = await open(path, 'r')
  try {
    const { size } = await handle.stat()
    if (size > MAX_CONFIG_BYTES) return { size }
    // A file that grew since the stat is read no further than the limit allows.
    const buffer = Buffer.alloc(Math.min(size, MAX_CONFIG_BYTES) + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    return length > MAX_CONFIG_BYTES ? { size: length } : { bytes: buffer.subarray(0, length) }
  } finally {
    await handle.close()
  }
}

/** The text of a config file's bytes, or a ConfigError for one that was too large to read. */
export function configText (read: { bytes: Buffer } | { size: number }): string {
  if ('size' in read) throw tooLarge(read.size)
  return decodeConfig(read.bytes)
}

/** Reads a config file (refusing one over 1 MiB before reading it) and parses it; errors name the file. */
export async function loadConfigFile (file: string, configRoot?: string): Promise<ParsedConfig> {
  const path = resolve(file)
  let xml: string
  try {
    xml = configText(await readBounded(path))
  } catch (err) {
    if (err instanceof ConfigError) throw err.inFile(file)
    throw new ConfigError([{ message: `cannot read the config file: ${(err as Error).message}` }], file)
  }
  try {
    return parseConfig(xml, { configRoot: configRoot ?? dirname(path) })
  } catch (err) {
    throw err instanceof ConfigError ? err.inFile(file) : err
  }
}

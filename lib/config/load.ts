import { open } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { ConfigError } from './errors.js'
import { parseConfig, type ParsedConfig } from './parse.js'
import { MAX_CONFIG_BYTES } from './xml.js'

/** Reads a config file (refusing one over 1 MiB before reading it) and parses it; errors name the file. */
export async function loadConfigFile (file: string, configRoot?: string): Promise<ParsedConfig> {
  const path = resolve(file)
  let xml: string
  try {
    const handle = await open(path, 'r')
    try {
      const { size } = await handle.stat()
      if (size > MAX_CONFIG_BYTES) throw new ConfigError([{ message: `config is ${size} bytes, larger than the 1 MiB limit` }], file)
      xml = await handle.readFile('utf8')
    } finally {
      await handle.close()
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError([{ message: `cannot read the config file: ${(err as Error).message}` }], file)
  }
  try {
    return parseConfig(xml, { configRoot: configRoot ?? dirname(path) })
  } catch (err) {
    throw err instanceof ConfigError ? err.inFile(file) : err
  }
}

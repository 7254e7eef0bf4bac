import { dirname } from 'node:path'
import { ConfigError, formatProblem } from '../config/errors.js'
import { loadConfigFile } from '../config/load.js'
import { maskSettings } from '../config/settings.js'
import { loadPoolContext } from '../tls/index.js'

export interface Output { out: (line: string) => void, err: (line: string) => void }

function show (value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value)
}

/** `fastify-http-pools check FILE`: 0 when valid, 1 with every error. */
export async function check (file: string, io: Output): Promise<number> {
  try {
    const { defaultId, pools } = await loadConfigFile(file, dirname(file))
    // Keystores are opened, and their TLS context built, too: a wrong password is a config error, not a runtime surprise.
    const problems = []
    for (const pool of pools) {
      try {
        for (const warning of loadPoolContext(pool, dirname(file)).warnings) io.err(`${file}: warning: ${warning}`)
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err
        problems.push(...err.errors)
      }
    }
    if (problems.length > 0) throw new ConfigError(problems, file)
    io.out(`${file}: ${pools.length} pool${pools.length === 1 ? '' : 's'}, default "${defaultId}"`)
    for (const pool of pools) {
      const masked = maskSettings(pool)
      io.out(`pool "${pool.id}"${pool.default ? ' (default)' : ''}`)
      for (const [key, value] of Object.entries(masked)) {
        if (key === 'id' || key === 'headers') continue
        io.out(`  ${key} = ${value === null ? '(none)' : show(value)}`)
      }
      for (const h of masked.headers as { name: string, value: string }[]) io.out(`  header ${h.name}: ${h.value}`)
    }
    return 0
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const p of err.errors) io.err(formatProblem(p, file))
    io.err(`${file}: ${err.errors.length} error${err.errors.length === 1 ? '' : 's'}`)
    return 1
  }
}

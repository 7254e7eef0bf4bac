/** One problem found in a config file. Never carries a secret value. */
export interface ConfigProblem {
  message: string
  line?: number
  pool?: string
  attribute?: string
}

export function formatProblem (p: ConfigProblem, file?: string): string {
  let where = file ?? ''
  if (p.line !== undefined) where += (where ? ':' : 'line ') + p.line
  const parts = where ? [where] : []
  if (p.pool !== undefined) parts.push(`pool "${p.pool}"`)
  if (p.attribute !== undefined) parts.push(p.attribute)
  parts.push(p.message)
  return parts.join(': ')
}

/** Thrown for any invalid config: lists every problem found, not just the first. */
export class ConfigError extends Error {
  readonly errors: readonly ConfigProblem[]
  readonly file: string | undefined
  readonly code = 'FST_HTTP_POOLS_CONFIG'

  constructor (errors: ConfigProblem[], file?: string) {
    const lines = errors.map((e) => formatProblem(e, file))
    const head = errors.length === 1 ? 'Invalid connection pool config' : `Invalid connection pool config (${errors.length} errors)`
    super(`${head}: ${lines.join('; ')}`)
    this.name = 'ConfigError'
    this.errors = Object.freeze(errors.map((e) => Object.freeze({ ...e })))
    this.file = file
  }

  /** The same errors, attributed to a file (the parser itself only sees a string). */
  inFile (file: string): ConfigError {
    return new ConfigError([...this.errors], file)
  }
}

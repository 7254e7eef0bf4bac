// A pino destination for the tests that keeps every log line, parsed and raw.

/** pino's numeric level of `warn`. */
export const WARN = 40

export interface LogLine { level: number, msg?: string, pool?: string, origin?: string, code?: string, [key: string]: unknown }

export interface LogCapture {
  /** Pass as pino's destination: `Fastify({ logger: { level: 'warn', stream: logs.stream } })`. */
  stream: { write: (line: string) => void }
  /** Every line written, parsed. */
  lines: LogLine[]
  /** Every line written, as written (for "never appears in the logs" checks). */
  raw: string[]
}

/** A pino destination that keeps every line; `onLine` sees each as it is written (synchronously). */
export function logCapture (onLine?: (line: LogLine) => void): LogCapture {
  const lines: LogLine[] = []
  const raw: string[] = []
  return {
    lines,
    raw,
    stream: {
      write: (text: string) => {
        raw.push(text)
        const line = JSON.parse(text) as LogLine
        lines.push(line)
        onLine?.(line)
      }
    }
  }
}

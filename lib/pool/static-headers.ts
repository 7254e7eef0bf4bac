import type { Header } from '../config/schema.js'

type Headers = Record<string, string | string[] | undefined> | string[] | Iterable<[string, string | string[] | undefined]> | null | undefined

/**
 * The pool's `<headers>` replace any header of the same name that the request
 * has (Repose appends; replacing keeps a client from spoofing a pool header).
 */
export class StaticHeaders {
  private readonly names: Set<string>
  private readonly values: Record<string, string | string[]>

  constructor (headers: readonly Header[]) {
    this.values = {}
    for (const { name, value } of headers) {
      const key = name.toLowerCase()
      const prev = this.values[key]
      this.values[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value]
    }
    this.names = new Set(Object.keys(this.values))
  }

  apply (headers: Headers): Record<string, string | string[] | undefined> {
    const out: Record<string, string | string[] | undefined> = {}
    if (Array.isArray(headers) && typeof headers[0] !== 'object') {
      const flat = headers as string[]
      for (let i = 0; i < flat.length; i += 2) this.copy(out, flat[i]!, flat[i + 1])
    } else if (headers != null && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [k, v] of headers as Iterable<[string, string | string[] | undefined]>) this.copy(out, k, v)
    } else if (headers != null) {
      const obj = headers as Record<string, string | string[] | undefined>
      for (const k in obj) this.copy(out, k, obj[k])
    }
    return Object.assign(out, this.values)
  }

  private copy (out: Record<string, string | string[] | undefined>, name: string, value: string | string[] | undefined): void {
    const key = name.toLowerCase()
    if (this.names.has(key)) return
    const prev = out[key]
    if (prev === undefined || value === undefined) out[key] = value
    else out[key] = [...(Array.isArray(prev) ? prev : [prev]), ...(Array.isArray(value) ? value : [value])]
  }
}

import { inspect, type InspectOptions } from 'node:util'
import type { Header, PoolSettings } from '../config/schema.js'
import { inspectAs } from '../config/settings.js'
import type { Interceptor } from '../handler/decorator.js'
import { closesEachRequest } from './options.js'

export type Headers = Record<string, string | string[] | undefined> | string[] | Iterable<[string, string | string[] | undefined]> | null | undefined

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

  // The values are secrets (SPEC "Nothing leaks"): only the names print.
  toJSON (): object { return { names: [...this.names] } }
  [inspect.custom] (_depth: number, options: InspectOptions): string { return inspectAs(this, options) }

  apply (headers: Headers): HeaderRecord {
    return mergeHeaders(headers, this.values, this.names)
  }
}

/**
 * What a pool sets on every request: its `<headers>`, and `connection: close`
 * when `keepalive.timeout` is 1. Null when it sets nothing.
 */
export function poolRequestOptions (settings: PoolSettings): Interceptor | null {
  const headers = settings.headers.length > 0 ? new StaticHeaders(settings.headers) : undefined
  const reset = closesEachRequest(settings)
  if (headers === undefined && !reset) return null
  return (dispatch) => (opts, handler) => {
    opts = { ...opts }
    if (headers !== undefined) opts.headers = headers.apply(opts.headers as Headers)
    if (reset) opts.reset = true
    return dispatch(opts, handler)
  }
}

type HeaderRecord = Record<string, string | string[] | undefined>

/**
 * Request headers in any form undici takes (object, flat array, pairs) as one
 * lower-cased object, with `extra` replacing headers of the same name.
 */
export function mergeHeaders (headers: Headers, extra: Record<string, string | string[]>, names: Set<string> = new Set(Object.keys(extra))): HeaderRecord {
  const out: HeaderRecord = {}
  const copy = (name: string, value: string | string[] | undefined): void => {
    const key = name.toLowerCase()
    if (names.has(key)) return
    const prev = out[key]
    if (prev === undefined || value === undefined) out[key] = value
    else out[key] = [...(Array.isArray(prev) ? prev : [prev]), ...(Array.isArray(value) ? value : [value])]
  }
  if (Array.isArray(headers) && typeof headers[0] !== 'object') {
    const flat = headers as string[]
    for (let i = 0; i < flat.length; i += 2) copy(flat[i]!, flat[i + 1])
  } else if (headers != null && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string | string[] | undefined]>) copy(k, v)
  } else if (headers != null) {
    const obj = headers as HeaderRecord
    for (const k in obj) copy(k, obj[k])
  }
  return Object.assign(out, extra)
}

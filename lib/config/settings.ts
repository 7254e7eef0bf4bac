import { inspect } from 'node:util'
import { ATTRIBUTES, type Header, type PoolSettings } from './schema.js'
import { maskProxy, parseProxy } from './values.js'

const MASK = '***'

/** A plain copy of the settings that is safe to print or log. */
export function maskSettings (s: PoolSettings): Record<string, unknown> {
  const out: Record<string, unknown> = { id: s.id }
  for (const a of ATTRIBUTES) {
    const v = s[a.key]
    out[a.key] = a.secret && v !== null ? MASK : v
  }
  const proxy = s['http.route.default-proxy']
  if (proxy !== null) {
    const p = parseProxy(proxy)
    out['http.route.default-proxy'] = p.ok ? maskProxy(p.value) : MASK
  }
  out.headers = s.headers.map((h) => ({ name: h.name, value: MASK }))
  return out
}

function printMasked<T extends object> (target: T, masked: () => unknown): T {
  Object.defineProperty(target, 'toJSON', { value: masked })
  Object.defineProperty(target, inspect.custom, {
    value: (_depth: number, options: object) => inspect(masked(), options)
  })
  return target
}

export function freezeHeader (name: string, value: string): Header {
  return Object.freeze(printMasked({ name, value }, () => ({ name, value: MASK })))
}

/** Frozen settings whose secrets print as `***` (JSON, util.inspect, hence logs). */
export function freezeSettings (values: Omit<PoolSettings, 'headers'> & { headers: Header[] }): PoolSettings {
  const s = { ...values, headers: Object.freeze(values.headers) } as PoolSettings
  return Object.freeze(printMasked(s, () => maskSettings(s)))
}

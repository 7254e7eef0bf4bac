import { inspect, type InspectOptions } from 'node:util'
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

/**
 * util.inspect of an object the package hands out (registry, client,
 * dispatcher): its class name and its toJSON(), which holds no secret, instead
 * of its fields, which lead to proxy credentials and header values.
 */
export function inspectAs (self: { toJSON: () => unknown }, options: InspectOptions): string {
  return `${self.constructor.name} ${inspect(self.toJSON(), options)}`
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

/** Whether two pools' settings are the same, secrets included (their printed forms mask those). */
export function sameSettings (a: PoolSettings, b: PoolSettings): boolean {
  if (a.id !== b.id || a.headers.length !== b.headers.length) return false
  if (a.headers.some((h, i) => h.name !== b.headers[i]!.name || h.value !== b.headers[i]!.value)) return false
  return ATTRIBUTES.every(({ key }) => {
    const x = a[key]
    const y = b[key]
    return Array.isArray(x) && Array.isArray(y) ? x.length === y.length && x.every((v, i) => v === y[i]) : x === y
  })
}

/** The attributes whose values differ, for the reload log (names only: values may be secret). */
export function changedAttributes (a: PoolSettings, b: PoolSettings): string[] {
  const out = ATTRIBUTES.filter(({ key }) => JSON.stringify(a[key]) !== JSON.stringify(b[key])).map(({ key }) => key as string)
  if (a.headers.length !== b.headers.length || a.headers.some((h, i) => h.name !== b.headers[i]!.name || h.value !== b.headers[i]!.value)) out.push('headers')
  return out
}

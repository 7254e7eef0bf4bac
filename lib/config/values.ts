// Value parsers for the XML attribute types. Each returns the parsed value or
// a message that never repeats the raw value: a misplaced quote can make any
// attribute's value hold the next attribute, password included.
import { isIP } from 'node:net'

export type Parsed<T> = { ok: true, value: T } | { ok: false, message: string }

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const fail = (message: string): Parsed<never> => ({ ok: false, message })

const INT_MAX = 2147483647
// xs:int after whitespace collapsing: optional sign, digits only.
const XS_INT = /^[+-]?[0-9]+$/

/** A non-negative xs:int, at least `min`. */
export function parseInt32 (raw: string, min: number): Parsed<number> {
  const s = raw.trim()
  if (!XS_INT.test(s)) return fail('is not an integer (xs:int)')
  const n = Number(s)
  if (n < 0) return fail('must not be negative')
  if (n > INT_MAX) return fail(`is larger than ${INT_MAX}`)
  if (n < min) return fail(`must be at least ${min}`)
  return ok(n === 0 ? 0 : n) // -0 and +0 both become 0
}

export function parseBoolean (raw: string): Parsed<boolean> {
  switch (raw.trim()) {
    case 'true': case '1': return ok(true)
    case 'false': case '0': return ok(false)
    default: return fail('is not a boolean (true, false, 1 or 0)')
  }
}

// RFC 9110 token: method names and header field names.
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

export function parseMethods (raw: string): Parsed<readonly string[]> {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const [i, m] of items.entries()) {
    if (!TOKEN.test(m)) return fail(`item ${i + 1} is not an HTTP method (a token)`)
  }
  return ok(Object.freeze([...new Set(items.map((m) => m.toUpperCase()))]))
}

export function parseStatuses (raw: string): Parsed<readonly number[]> {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const out: number[] = []
  for (const [i, s] of items.entries()) {
    if (!/^[0-9]{3}$/.test(s) || Number(s) < 100 || Number(s) > 599) return fail(`item ${i + 1} is not an HTTP status code (100-599)`)
    out.push(Number(s))
  }
  return ok(Object.freeze([...new Set(out)]))
}

export interface ProxyTarget {
  protocol: 'http:' | 'https:'
  /** An IPv6 address without its brackets: a connect takes the bare address. */
  hostname: string
  port: number
  username: string
  password: string
}

/**
 * Repose's proxy forms: `http://h:p`, `http://h`, `h:p`, `h`, each optionally
 * with `user:pass@`. Messages never echo the value: it may hold credentials.
 */
export function parseProxy (raw: string): Parsed<ProxyTarget> {
  let rest = raw.trim()
  let protocol: ProxyTarget['protocol'] = 'http:'
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest)
  if (scheme) {
    const name = scheme[1]!.toLowerCase()
    if (name !== 'http' && name !== 'https') return fail('proxy scheme is not supported (http or https)')
    protocol = `${name}:`
    rest = rest.slice(scheme[0].length)
  }
  if (rest.endsWith('/')) rest = rest.slice(0, -1)
  let username = ''
  let password = ''
  const at = rest.lastIndexOf('@')
  if (at !== -1) {
    const info = rest.slice(0, at)
    rest = rest.slice(at + 1)
    const colon = info.indexOf(':')
    username = colon === -1 ? info : info.slice(0, colon)
    password = colon === -1 ? '' : info.slice(colon + 1)
    try {
      username = decodeURIComponent(username)
      password = decodeURIComponent(password)
    } catch {
      return fail('proxy user-info is not valid percent-encoding')
    }
  }
  let hostname: string
  let portText: string | undefined
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    if (close === -1) return fail('proxy IPv6 host is missing "]"')
    hostname = rest.slice(1, close)
    if (isIP(hostname) !== 6) return fail('proxy host in brackets is not an IPv6 address')
    const after = rest.slice(close + 1)
    if (after !== '' && !after.startsWith(':')) return fail('proxy host is not valid')
    portText = after === '' ? undefined : after.slice(1)
  } else {
    const colon = rest.indexOf(':')
    hostname = colon === -1 ? rest : rest.slice(0, colon)
    portText = colon === -1 ? undefined : rest.slice(colon + 1)
  }
  if (hostname === '' || /[\s/?#@]/.test(hostname)) return fail('proxy host is missing or not valid')
  let port = protocol === 'https:' ? 443 : 80
  if (portText !== undefined) {
    if (!/^[0-9]+$/.test(portText)) return fail('proxy port is not a number')
    port = Number(portText)
    if (port < 1 || port > 65535) return fail('proxy port must be between 1 and 65535')
  }
  return ok({ protocol, hostname, port, username, password })
}

/** The host as a URL authority writes it: an IPv6 address in brackets. */
export const hostOf = (p: ProxyTarget): string => p.hostname.includes(':') ? `[${p.hostname}]` : p.hostname

/** The proxy value for printing: user-info masked. */
export function maskProxy (p: ProxyTarget): string {
  const info = p.username || p.password ? '***@' : ''
  return `${p.protocol}//${info}${hostOf(p)}:${p.port}`
}

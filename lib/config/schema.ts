import { parseBoolean, parseInt32, parseMethods, parseProxy, parseStatuses, type Parsed } from './values.js'

export const REPOSE_NS = 'http://docs.openrepose.org/repose/http-connection-pool/v1.0'
export const EXTENSION_NS = 'urn:fastify-http-pools:1'

export interface Header { readonly name: string, readonly value: string }

/** Effective settings of one pool, keyed as the XML writes the attributes (extensions without prefix). */
export interface PoolSettings {
  readonly id: string
  readonly default: boolean
  readonly 'cache.ttl': number
  readonly 'http.conn-manager.max-total': number
  readonly 'http.conn-manager.max-per-route': number
  readonly 'http.socket.timeout': number
  readonly 'http.socket.buffer-size': number
  readonly 'http.connection.timeout': number
  readonly 'http.connection.max-line-length': number
  readonly 'http.connection.max-header-count': number
  readonly 'http.tcp.nodelay': boolean
  /** As written in the file; `null` when the pool has no proxy. */
  readonly 'http.route.default-proxy': string | null
  readonly 'keepalive.timeout': number
  readonly 'keystore-filename': string | null
  readonly 'keystore-password': string | null
  readonly 'key-password': string | null
  readonly 'truststore-filename': string | null
  readonly 'truststore-password': string | null
  readonly headers: readonly Header[]
  readonly 'retry.max-attempts': number
  readonly 'retry.methods': readonly string[]
  readonly 'retry.statuses': readonly number[]
  readonly 'retry.base-delay': number
  readonly 'retry.max-delay': number
  readonly 'queue.timeout': number
  readonly 'request.timeout': number
  readonly 'circuit-breaker.threshold': number
  readonly 'circuit-breaker.reset': number
  readonly 'queue.max-pending': number
  readonly 'retry.budget': number
  readonly 'retry.min-concurrent': number
  readonly 'connection.max-lifetime': number
  readonly http2: boolean
  readonly 'tls.insecure': boolean
}

type Key = Exclude<keyof PoolSettings, 'id' | 'headers'>

export interface AttributeSpec {
  key: Key
  namespace: '' | typeof EXTENSION_NS
  default: PoolSettings[Key]
  parse: (raw: string) => Parsed<unknown>
  /** Printed as `***`; never echoed in an error. */
  secret?: boolean
}

const int = (min: number) => (raw: string) => parseInt32(raw, min)
const percent = (raw: string): Parsed<number> => {
  const p = parseInt32(raw, 0)
  return p.ok && p.value > 100 ? { ok: false, message: 'must be at most 100 (percent)' } : p
}
const str = (raw: string): Parsed<string> => ({ ok: true, value: raw })
// The proxy is kept as written; parsing here only validates it.
const proxy = (raw: string): Parsed<string> => {
  const p = parseProxy(raw)
  return p.ok ? { ok: true, value: raw.trim() } : p
}

function attr (key: Key, def: PoolSettings[Key], parse: AttributeSpec['parse'], extra: Partial<AttributeSpec> = {}): AttributeSpec {
  return { key, namespace: '', default: def, parse, ...extra }
}
function ext (key: Key, def: PoolSettings[Key], parse: AttributeSpec['parse']): AttributeSpec {
  return { key, namespace: EXTENSION_NS, default: def, parse }
}

/** Every pool attribute but `id`, in SPEC.md order. */
export const ATTRIBUTES: readonly AttributeSpec[] = [
  attr('default', false, parseBoolean),
  attr('cache.ttl', 500, int(0)),
  attr('http.conn-manager.max-total', 400, int(1)),
  attr('http.conn-manager.max-per-route', 200, int(1)),
  attr('http.socket.timeout', 30000, int(0)),
  attr('http.socket.buffer-size', 8192, int(0)),
  attr('http.connection.timeout', 30000, int(0)),
  attr('http.connection.max-line-length', 8192, int(0)),
  attr('http.connection.max-header-count', 100, int(0)),
  attr('http.tcp.nodelay', true, parseBoolean),
  attr('http.route.default-proxy', null, proxy, { secret: true }),
  attr('keepalive.timeout', 0, int(0)),
  attr('keystore-filename', null, str),
  attr('keystore-password', null, str, { secret: true }),
  attr('key-password', null, str, { secret: true }),
  attr('truststore-filename', null, str),
  attr('truststore-password', null, str, { secret: true }),
  ext('retry.max-attempts', 3, int(1)),
  ext('retry.methods', Object.freeze(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']), parseMethods),
  ext('retry.statuses', Object.freeze([408, 429, 500, 502, 503, 504]), parseStatuses),
  ext('retry.base-delay', 100, int(0)),
  ext('retry.max-delay', 10000, int(0)),
  ext('queue.timeout', 0, int(0)),
  ext('request.timeout', 0, int(0)),
  ext('circuit-breaker.threshold', 0, int(0)),
  ext('circuit-breaker.reset', 30000, int(1)),
  ext('queue.max-pending', 1024, int(0)),
  ext('retry.budget', 20, percent),
  ext('retry.min-concurrent', 3, int(0)),
  ext('connection.max-lifetime', 0, int(0)),
  ext('http2', false, parseBoolean),
  ext('tls.insecure', false, parseBoolean)
]

export const BY_NAME = new Map(ATTRIBUTES.filter((a) => a.namespace === '').map((a) => [a.key as string, a]))
export const BY_EXTENSION = new Map(ATTRIBUTES.filter((a) => a.namespace === EXTENSION_NS).map((a) => [a.key as string, a]))

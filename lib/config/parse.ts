import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigError, type ConfigProblem } from './errors.js'
import { ATTRIBUTES, BY_EXTENSION, BY_NAME, EXTENSION_NS, REPOSE_NS, type Header, type PoolSettings } from './schema.js'
import { freezeHeader, freezeSettings } from './settings.js'
import { TOKEN } from './values.js'
import { readXml, type XmlAttribute, type XmlElement } from './xml.js'

export interface ParseOptions {
  /** Where relative keystore and truststore names resolve; default: the working directory. */
  configRoot?: string
}

export interface ParsedConfig {
  defaultId: string
  pools: PoolSettings[]
}

// Repose's own assertion messages, verbatim.
export const MSG_UNIQUE_IDS = 'Pools must have unique ids'
export const MSG_ONE_DEFAULT = 'One and only one default pool must be defined'
export const MSG_PER_ROUTE = 'Max connections per route must be less than or equal to total max connections'
export const MSG_KEYSTORE = 'IF a keystore filename, password, or key password is provided, THEN all must be provided'

// Headers that frame the message or belong to one connection: a static value would break the exchange.
const FORBIDDEN_HEADERS = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'proxy-connection'])

// C0, DEL and C1: Unicode's control characters.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\x00-\x1F\x7F-\x9F]/

const name = (e: { ns: string, local: string }): string => e.ns === '' ? e.local : `{${e.ns}}${e.local}`

function distance (a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]!
}

// The names a misspelt attribute is compared with, for the "did you mean" hint.
const KNOWN_REPOSE = ['id', ...BY_NAME.keys()]
const KNOWN_EXTENSION = [...BY_EXTENSION.keys()]
const MAX_HINT_EDITS = 3

/** The first known name within MAX_HINT_EDITS edits of `name`, the closest one. */
function closest (name: string, known: string[]): string | undefined {
  let best: string | undefined
  let bestEdits = MAX_HINT_EDITS + 1
  for (const k of known) {
    // It takes at least as many edits as the lengths differ: most names are ruled
    // out without the table, so a file of unknown attributes stays linear and fast.
    if (Math.abs(k.length - name.length) >= bestEdits) continue
    const edits = distance(name, k)
    if (edits < bestEdits) {
      best = k
      bestEdits = edits
    }
  }
  return best
}

function unknownAttribute (a: XmlAttribute): string {
  let hint = ''
  if (a.ns === '' && BY_EXTENSION.has(a.local)) hint = `; extensions live in namespace ${EXTENSION_NS} (x:${a.local})`
  else if (a.ns !== EXTENSION_NS && a.ns !== '' && BY_EXTENSION.has(a.local)) hint = `; did you mean namespace ${EXTENSION_NS}?`
  else if (a.ns !== '' && BY_NAME.has(a.local)) hint = `; Repose attributes take no namespace prefix (${a.local})`
  else {
    const best = closest(a.local, a.ns === EXTENSION_NS ? KNOWN_EXTENSION : KNOWN_REPOSE)
    if (best !== undefined) hint = `; did you mean ${a.ns === EXTENSION_NS ? 'x:' : ''}${best}?`
  }
  return `unknown attribute ${name(a)}${hint}`
}

interface PoolSeen { id: string | undefined, isDefault: boolean, line: number }

class PoolReader {
  readonly problems: ConfigProblem[] = []
  // Every <pool>, valid or not, so the cross-pool rules see the whole file.
  private readonly seen: PoolSeen[] = []
  constructor (private readonly configRoot: string) {}

  private problem (message: string, line: number, pool?: string, attribute?: string): void {
    const p: ConfigProblem = { message, line }
    if (pool !== undefined) p.pool = pool
    if (attribute !== undefined) p.attribute = attribute
    this.problems.push(p)
  }

  private noText (e: XmlElement, pool?: string): void {
    if (e.hasText) this.problem(`<${e.local}> must not contain text`, e.line, pool)
  }

  readRoot (root: XmlElement): PoolSettings[] {
    if (root.ns !== REPOSE_NS || root.local !== 'http-connection-pools') {
      this.problem(`the root element must be <http-connection-pools> in namespace ${REPOSE_NS}, not ${name(root)}`, root.line)
      return []
    }
    for (const a of root.attributes) this.problem(unknownAttribute(a), a.line, undefined, a.qname)
    this.noText(root)
    const pools: PoolSettings[] = []
    for (const child of root.children) {
      if (child.ns === REPOSE_NS && child.local === 'pool') {
        const p = this.readPool(child)
        if (p) pools.push(p)
      } else {
        this.problem(`unknown element ${name(child)}; only <pool> is allowed here`, child.line)
      }
    }
    if (root.children.length === 0) this.problem('at least one <pool> is required', root.line)
    return pools
  }

  private readPool (e: XmlElement): PoolSettings | undefined {
    const idAttr = e.attributes.find((a) => a.ns === '' && a.local === 'id')
    // An id with a control character is never repeated: in `check` output or a
    // log it would forge lines (&#10;), so the pool's other problems go unnamed.
    const controls = idAttr?.error === undefined && CONTROL.test(idAttr?.value ?? '')
    const id = idAttr?.error === undefined && !controls ? idAttr?.value : undefined
    if (idAttr === undefined) this.problem('attribute is required', e.line, undefined, 'id')
    else if (idAttr.error !== undefined) this.problem(idAttr.error, idAttr.line, undefined, 'id')
    else if (controls) this.problem('must not contain control characters (CR, LF, TAB…)', idAttr.line, undefined, 'id')
    else if (id!.trim() === '') this.problem('must not be empty', idAttr.line, undefined, 'id')
    const values: Record<string, unknown> = { id }
    for (const spec of ATTRIBUTES) values[spec.key] = spec.default
    const lines: Record<string, number> = {}
    const before = this.problems.length
    for (const a of e.attributes) {
      if (a === idAttr) continue
      const spec = a.ns === '' ? BY_NAME.get(a.local) : a.ns === EXTENSION_NS ? BY_EXTENSION.get(a.local) : undefined
      if (!spec) {
        this.problem(unknownAttribute(a), a.line, id, a.qname)
        continue
      }
      lines[spec.key] = a.line
      if (a.error !== undefined) {
        this.problem(a.error, a.line, id, a.qname)
        continue
      }
      const parsed = spec.parse(a.value)
      if (parsed.ok) values[spec.key] = parsed.value
      else this.problem(parsed.message, a.line, id, a.qname)
    }
    values.headers = this.readHeaders(e, id)
    this.seen.push({ id, isDefault: values.default === true, line: e.line })
    this.checkPool(values, lines, e.line, id)
    if (this.problems.length !== before || id === undefined) return undefined
    return freezeSettings(values as unknown as PoolSettings & { headers: Header[] })
  }

  private readHeaders (pool: XmlElement, id: string | undefined): Header[] {
    this.noText(pool, id)
    const headers: Header[] = []
    let seen = false
    for (const h of pool.children) {
      if (h.ns !== REPOSE_NS || h.local !== 'headers') {
        this.problem(`unknown element ${name(h)}; only <headers> is allowed in <pool>`, h.line, id)
        continue
      }
      if (seen) this.problem('only one <headers> element is allowed in a pool', h.line, id)
      seen = true
      for (const a of h.attributes) this.problem(unknownAttribute(a), a.line, id, a.qname)
      this.noText(h, id)
      if (h.children.length === 0) this.problem('<headers> needs at least one <header>', h.line, id)
      for (const c of h.children) {
        const header = this.readHeader(c, id)
        if (header) headers.push(header)
      }
    }
    return headers
  }

  private readHeader (c: XmlElement, id: string | undefined): Header | undefined {
    if (c.ns !== REPOSE_NS || c.local !== 'header') {
      this.problem(`unknown element ${name(c)}; only <header> is allowed in <headers>`, c.line, id)
      return undefined
    }
    this.noText(c, id)
    let hname: string | undefined
    let hvalue: string | undefined
    const before = this.problems.length
    for (const a of c.attributes) {
      const known = a.ns === '' && (a.local === 'name' || a.local === 'value')
      if (!known) this.problem(unknownAttribute(a), a.line, id, `header ${a.qname}`)
      else if (a.error !== undefined) this.problem(a.error, a.line, id, `header ${a.local}`)
      else if (a.local === 'name') hname = a.value
      else hvalue = a.value
    }
    if (this.problems.length !== before) return undefined
    if (hname === undefined) this.problem('attribute is required', c.line, id, 'header name')
    else if (!TOKEN.test(hname)) this.problem('must be an HTTP token (no CR, LF, NUL, space or separator)', c.line, id, 'header name')
    else if (FORBIDDEN_HEADERS.has(hname.toLowerCase())) this.problem(`"${hname}" is a hop-by-hop or framing header and cannot be set by a pool`, c.line, id, 'header name')
    const label = hname !== undefined && TOKEN.test(hname) ? `header ${hname}` : 'header value'
    if (hvalue === undefined) this.problem('attribute value is required', c.line, id, label)
    else if (/[\0\r\n]/.test(hvalue)) this.problem('value contains CR, LF or NUL (header injection)', c.line, id, label)
    // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
    else if (/[\x01-\x08\x0B-\x1F\x7F-\x9F]/.test(hvalue)) this.problem('value contains a control character', c.line, id, label)
    // A field value is Latin-1 on the wire (RFC 9110 §5.5): anything above could never be sent.
    else if (/[\u0100-\uFFFF]/.test(hvalue)) this.problem('value has a character above U+00FF: header values are Latin-1 (RFC 9110 field values); encode it, e.g. percent-encoding', c.line, id, label)
    if (this.problems.length !== before || hname === undefined || hvalue === undefined) return undefined
    return freezeHeader(hname, hvalue)
  }

  private checkPool (v: Record<string, unknown>, lines: Record<string, number>, line: number, id: string | undefined): void {
    const at = (key: string): number => lines[key] ?? line
    if ((v['http.conn-manager.max-per-route'] as number) > (v['http.conn-manager.max-total'] as number)) {
      this.problem(MSG_PER_ROUTE, at('http.conn-manager.max-per-route'), id, 'http.conn-manager.max-per-route')
    }
    const trio = ['keystore-filename', 'keystore-password', 'key-password']
    const missing = trio.filter((k) => v[k] === null)
    if (missing.length > 0 && missing.length < trio.length) this.problem(MSG_KEYSTORE, line, id, missing.join(', '))
    for (const key of ['keystore-filename', 'truststore-filename']) {
      const file = v[key] as string | null
      if (file !== null) this.checkReadable(file, at(key), id, key)
    }
  }

  private checkReadable (file: string, line: number, id: string | undefined, key: string): void {
    const path = resolve(this.configRoot, file)
    // A name with a quote in it may be a value run astray into the next
    // attribute (a password): it is not repeated.
    const plain = !/["']/.test(file)
    const name = plain ? `"${file}" ` : ''
    const where = plain ? ` (resolved to ${path})` : ' (its name holds a quote: is one missing or misplaced?)'
    try {
      if (!statSync(path).isFile()) this.problem(`file ${name}is not a file${where}`, line, id, key)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be opened (${code})`
      this.problem(`file ${name}${why}${where}`, line, id, key)
    }
  }

  /** The rules across pools; returns the default pool's id. */
  checkPools (root: XmlElement): string | undefined {
    const ids = new Set<string>()
    for (const p of this.seen) {
      if (p.id === undefined) continue
      if (ids.has(p.id)) this.problem(MSG_UNIQUE_IDS, p.line, p.id, 'id')
      ids.add(p.id)
    }
    const defaults = this.seen.filter((p) => p.isDefault)
    if (this.seen.length > 0 && defaults.length !== 1) {
      this.problem(MSG_ONE_DEFAULT, defaults[1]?.line ?? root.line, defaults[1]?.id, 'default')
    }
    return defaults[0]?.id
  }
}

/** Parses and validates a Repose http-connection-pool.cfg.xml; throws a ConfigError listing every problem. */
export function parseConfig (xml: string, options: ParseOptions = {}): ParsedConfig {
  const root = readXml(xml)
  const reader = new PoolReader(options.configRoot ?? process.cwd())
  const pools = reader.readRoot(root)
  const defaultId = reader.checkPools(root)
  if (reader.problems.length > 0 || defaultId === undefined) throw new ConfigError(reader.problems)
  return { defaultId, pools }
}

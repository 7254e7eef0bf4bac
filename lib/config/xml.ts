import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { ConfigError } from './errors.js'

/** Larger files are refused before any parsing. */
export const MAX_CONFIG_BYTES = 1024 * 1024

export interface XmlAttribute {
  /** Namespace URI; '' for an unprefixed attribute. */
  ns: string
  local: string
  qname: string
  value: string
  line: number
}

export interface XmlElement {
  ns: string
  local: string
  qname: string
  line: number
  attributes: XmlAttribute[]
  children: XmlElement[]
  /** Whether the element holds character data other than white space. */
  hasText: boolean
}

const META = XMLParser.getMetaDataSymbol() as unknown as symbol
const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  // Entities are decoded here, in one pass, as XML requires (the parser would leave &#10; as is).
  processEntities: false,
  htmlEntities: false,
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  captureMetaData: true,
  commentPropName: '#comment'
})

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

function isXmlChar (c: number): boolean {
  return c === 0x9 || c === 0xA || c === 0xD || (c >= 0x20 && c <= 0xD7FF) ||
    (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF)
}

class Source {
  private readonly lineStarts: number[] = [0]
  constructor (readonly text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.lineStarts.push(i + 1)
  }

  lineAt (offset: number): number {
    let lo = 0
    let hi = this.lineStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.lineStarts[mid]! <= offset) lo = mid
      else hi = mid - 1
    }
    return lo + 1
  }
}

/** Attribute value normalisation (XML 1.0 §3.3.3): literal white space becomes a space, references are decoded. */
function decodeAttribute (raw: string, line: number, qname: string): string {
  return raw.replace(/\r\n?|[\t\n]/g, ' ').replace(/&([^;&\s]*);|&/g, (ref: string, body: string | undefined) => {
    if (body === undefined) throw new ConfigError([{ message: `attribute ${qname}: "&" must start a reference such as &amp;`, line }])
    if (body.startsWith('#')) {
      const code = /^#x[0-9a-fA-F]+$/.test(body) ? parseInt(body.slice(2), 16) : /^#[0-9]+$/.test(body) ? parseInt(body.slice(1), 10) : NaN
      if (!isXmlChar(code)) throw new ConfigError([{ message: `attribute ${qname}: character reference ${ref} is not a legal XML character`, line }])
      return String.fromCodePoint(code)
    }
    const named = PREDEFINED[body]
    if (named === undefined) throw new ConfigError([{ message: `attribute ${qname}: undefined entity ${ref} (only the five predefined XML entities exist without a DOCTYPE)`, line }])
    return named
  })
}

type Node = Record<string | symbol, unknown>

function split (qname: string): [string | undefined, string] {
  const i = qname.indexOf(':')
  return i === -1 ? [undefined, qname] : [qname.slice(0, i), qname.slice(i + 1)]
}

function attributeLine (src: Source, start: number, qname: string): number {
  const re = new RegExp(`\\s${qname.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}\\s*=`, 'g')
  re.lastIndex = start
  const m = re.exec(src.text)
  return src.lineAt(m ? m.index + 1 : start)
}

function buildElement (src: Source, node: Node, qname: string, scope: Map<string, string>, problems: { message: string, line: number }[]): XmlElement {
  const meta = node[META] as { startIndex: number } | undefined
  const start = meta?.startIndex ?? 0
  const line = src.lineAt(start)
  const rawAttrs = (node[':@'] ?? {}) as Record<string, string>
  let inner = scope
  const pending: [string, string, number][] = []
  for (const [name, raw] of Object.entries(rawAttrs)) {
    const aline = attributeLine(src, start, name)
    const value = decodeAttribute(raw, aline, name)
    if (name === 'xmlns' || name.startsWith('xmlns:')) {
      if (inner === scope) inner = new Map(scope)
      inner.set(name === 'xmlns' ? '' : name.slice(6), value)
    } else {
      pending.push([name, value, aline])
    }
  }
  const resolve = (prefix: string | undefined, what: string, l: number): string => {
    if (prefix === undefined) return ''
    if (prefix === 'xml') return 'http://www.w3.org/XML/1998/namespace'
    const uri = inner.get(prefix)
    if (uri === undefined) {
      problems.push({ message: `${what} uses the undeclared namespace prefix "${prefix}"`, line: l })
      return `undeclared:${prefix}`
    }
    return uri
  }
  const [prefix, local] = split(qname)
  const ns = prefix === undefined ? (inner.get('') ?? '') : resolve(prefix, `element <${qname}>`, line)
  const attributes = pending.map(([name, value, aline]): XmlAttribute => {
    const [p, l] = split(name)
    return { ns: resolve(p, `attribute ${name}`, aline), local: l, qname: name, value, line: aline }
  })
  const children: XmlElement[] = []
  let hasText = false
  for (const child of node[qname] as Node[]) {
    const key = Object.keys(child).find((k) => k !== ':@')
    if (key === undefined || key === '#comment' || key.startsWith('?')) continue
    if (key === '#text') {
      if (String(child[key]).trim() !== '') hasText = true
      continue
    }
    children.push(buildElement(src, child, key, inner, problems))
  }
  return { ns, local, qname, line, attributes, children, hasText }
}

/**
 * Well-formed XML to a namespace-resolved element tree with line numbers.
 * Refuses what could be hostile before the parser sees it: size and DOCTYPE.
 */
export function readXml (xml: string): XmlElement {
  const bytes = Buffer.byteLength(xml)
  if (bytes > MAX_CONFIG_BYTES) throw new ConfigError([{ message: `config is ${bytes} bytes, larger than the 1 MiB limit` }])
  const text = xml.charCodeAt(0) === 0xFEFF ? xml.slice(1) : xml
  const src = new Source(text)
  const doctype = text.indexOf('<!DOCTYPE')
  if (doctype !== -1) {
    throw new ConfigError([{ message: 'a DOCTYPE is not allowed (no entity or external resource is ever loaded)', line: src.lineAt(doctype) }])
  }
  const valid = XMLValidator.validate(text)
  if (valid !== true) {
    throw new ConfigError([{ message: `malformed XML at column ${valid.err.col}: ${valid.err.msg}`, line: valid.err.line }])
  }
  const nodes = parser.parse(text) as Node[]
  const problems: { message: string, line: number }[] = []
  let root: XmlElement | undefined
  for (const node of nodes) {
    const key = Object.keys(node).find((k) => k !== ':@')
    if (key === undefined || key === '#comment' || key === '#text' || key.startsWith('?')) continue
    root = buildElement(src, node, key, new Map(), problems)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  if (root === undefined) throw new ConfigError([{ message: 'the document has no root element' }])
  return root
}

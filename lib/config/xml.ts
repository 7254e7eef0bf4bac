import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { checkDeclaredEncoding } from './encoding.js'
import { ConfigError } from './errors.js'
import { ATTRIBUTES } from './schema.js'

/** Larger files are refused before any parsing. */
export const MAX_CONFIG_BYTES = 1024 * 1024

export const tooLarge = (bytes: number): ConfigError => new ConfigError([{ message: `config is ${bytes} bytes, larger than the 1 MiB limit` }])

export interface XmlAttribute {
  /** Namespace URI; '' for an unprefixed attribute. */
  ns: string
  local: string
  qname: string
  value: string
  line: number
  /** Why the value could not be read (bad reference, `<`); never repeats the value, which may be secret. */
  error?: string
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

/**
 * Attribute value normalisation (XML 1.0 §3.3.3): literal white space becomes a
 * space, references are decoded. Errors never quote the value: it may be secret.
 */
function decodeAttribute (raw: string): { value: string } | { error: string } {
  if (raw.includes('<')) return { error: '"<" is not allowed in an attribute value (write &lt;)' }
  let error: string | undefined
  const value = raw.replace(/\r\n?|[\t\n]/g, ' ').replace(/&([^;&\s]*);|&/g, (_ref: string, body: string | undefined) => {
    if (body === undefined) {
      error ??= '"&" must start a reference such as &amp;'
    } else if (body.startsWith('#')) {
      const code = /^#x[0-9a-fA-F]+$/.test(body) ? parseInt(body.slice(2), 16) : /^#[0-9]+$/.test(body) ? parseInt(body.slice(1), 10) : NaN
      if (isXmlChar(code)) return String.fromCodePoint(code)
      error ??= 'a character reference is not a legal XML character'
    } else if (PREDEFINED[body] !== undefined) {
      return PREDEFINED[body]
    } else {
      error ??= 'undefined entity reference (only &lt; &gt; &amp; &quot; &apos; exist without a DOCTYPE)'
    }
    return ''
  })
  return error === undefined ? { value } : { error }
}

type Node = Record<string | symbol, unknown>

function split (qname: string): [string | undefined, string] {
  const i = qname.indexOf(':')
  return i === -1 ? [undefined, qname] : [qname.slice(0, i), qname.slice(i + 1)]
}

// One attribute of a start tag, from where the previous one ended.
const ATTRIBUTE = /\s*([^\s=/>]+)\s*=\s*(?:"[^"]*"|'[^']*')/y

/** The line of each attribute of the start tag at `start`, in one pass over the tag. */
function attributeLines (src: Source, start: number): Map<string, number> {
  const lines = new Map<string, number>()
  const name = /<[^\s/>]+/y
  name.lastIndex = start
  if (name.exec(src.text) === null) return lines
  ATTRIBUTE.lastIndex = name.lastIndex
  for (let m = ATTRIBUTE.exec(src.text); m !== null; m = ATTRIBUTE.exec(src.text)) {
    lines.set(m[1]!, src.lineAt(m.index + m[0].indexOf(m[1]!)))
  }
  return lines
}

function buildElement (src: Source, node: Node, qname: string, scope: Map<string, string>, problems: { message: string, line: number }[]): XmlElement {
  const meta = node[META] as { startIndex: number } | undefined
  const start = meta?.startIndex ?? 0
  const line = src.lineAt(start)
  const rawAttrs = (node[':@'] ?? {}) as Record<string, string>
  let inner = scope
  const pending: [string, string, number, string | undefined][] = []
  const lines = Object.keys(rawAttrs).length > 0 ? attributeLines(src, start) : undefined
  for (const [name, raw] of Object.entries(rawAttrs)) {
    const aline = lines?.get(name) ?? line
    const decoded = decodeAttribute(raw)
    const value = 'value' in decoded ? decoded.value : ''
    const error = 'error' in decoded ? decoded.error : undefined
    if (name === 'xmlns' || name.startsWith('xmlns:')) {
      if (error !== undefined) problems.push({ message: `${name}: ${error}`, line: aline })
      if (inner === scope) inner = new Map(scope)
      inner.set(name === 'xmlns' ? '' : name.slice(6), value)
    } else {
      pending.push([name, value, aline, error])
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
  const attributes = pending.map(([name, value, aline, error]): XmlAttribute => {
    const [p, l] = split(name)
    const a: XmlAttribute = { ns: resolve(p, `attribute ${name}`, aline), local: l, qname: name, value, line: aline }
    if (error !== undefined) a.error = error
    return a
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

// Names a config may hold: an error may repeat these. Any other text of a
// malformed document may be part of an attribute value run astray (a missing
// quote makes the next attribute's password a name), so it is never repeated.
const KNOWN_NAMES = new Set(['http-connection-pools', 'pool', 'headers', 'header', 'id', 'name', 'value', 'xmlns', ...ATTRIBUTES.map((a) => a.key)])
const known = (qname: string): boolean => KNOWN_NAMES.has(qname.slice(qname.indexOf(':') + 1)) || qname.startsWith('xmlns:')
const quoted = (qname: string, what: string): string => known(qname) ? `${what} ${qname}` : `${what}`

// The validator's messages quote the document; each is rewritten from its
// template, keeping only known names (its `'` quoting cannot be trusted to
// delimit a name that itself holds a quote).
const VALIDATOR_MESSAGES: Array<[RegExp, (name: string, line?: string) => string]> = [
  [/^Attribute '(.*)' has no space in starting\.$/s, (n) => `${quoted(n, 'an attribute')} does not follow white space (is a quote missing or misplaced?)`],
  [/^Attribute '(.*)' is without value\.$/s, (n) => `${quoted(n, 'an attribute')} has no quoted value`],
  [/^boolean attribute '(.*)' is not allowed\.$/s, (n) => `${quoted(n, 'an attribute')} has no value (is a quote missing or misplaced?)`],
  [/^Attribute '(.*)' is an invalid name\.$/s, () => 'an attribute name is not a valid XML name'],
  [/^Attribute '(.*)' is repeated\.$/s, (n) => `${quoted(n, 'an attribute')} is repeated`],
  [/^Attributes for '(.*)' have open quote\.$/s, (n) => `a quoted value in ${quoted(n, 'a tag')} is not closed`],
  [/^Tag '(.*)' is an invalid name\.$/s, () => 'a tag name is not a valid XML name'],
  [/^Closing tag '(.*)' doesn't have proper closing\.$/s, (n) => `closing ${quoted(n, 'tag')} is not closed with ">"`],
  [/^Closing tag '(.*)' can't have attributes or invalid starting\.$/s, (n) => `closing ${quoted(n, 'tag')} has attributes or does not start right`],
  [/^Closing tag '(.*)' has not been opened\.$/s, (n) => `closing ${quoted(n, 'tag')} has no start tag`],
  [/^Expected closing tag '(.*)' \(opened in line (\d+), col (\d+)\) instead of closing tag '(.*)'\.$/s, (n, line) => `expected the closing tag of ${quoted(n, 'the element')} opened on line ${line!}`],
  [/^Unclosed tag '(.*)'\.$/s, (n) => `${quoted(n, 'a tag')} is not closed`],
  [/^char '(.)' is not expected\.$/s, (c) => /^[<>&"'=/]$/.test(c) ? `unexpected "${c}"` : 'unexpected character']
]
const FIXED_VALIDATOR_MESSAGES = new Set(['Invalid space after \'<\'.', 'Multiple possible root nodes found.', 'Extra text at the end', 'Start tag expected.', 'XML declaration allowed only at the start of the document.'])
const PARSER_MESSAGES = new Set(['Maximum nested tags exceeded', 'Pi Tag is not closed.', 'Multiple DOCTYPE declarations found.'])

function validatorMessage (msg: string): string {
  if (FIXED_VALIDATOR_MESSAGES.has(msg)) return msg
  for (const [template, rewrite] of VALIDATOR_MESSAGES) {
    const m = template.exec(msg)
    if (m !== null) return rewrite(m[1]!, m[2])
  }
  return 'not well-formed'
}

/**
 * Well-formed XML to a namespace-resolved element tree with line numbers.
 * Refuses what could be hostile before the parser sees it: size and DOCTYPE.
 */
export function readXml (xml: string): XmlElement {
  const bytes = Buffer.byteLength(xml)
  if (bytes > MAX_CONFIG_BYTES) throw tooLarge(bytes)
  const text = xml.charCodeAt(0) === 0xFEFF ? xml.slice(1) : xml
  checkDeclaredEncoding(text)
  const src = new Source(text)
  const doctype = text.indexOf('<!DOCTYPE')
  if (doctype !== -1) {
    throw new ConfigError([{ message: 'a DOCTYPE is not allowed (no entity or external resource is ever loaded)', line: src.lineAt(doctype) }])
  }
  if (text.replace(/<\?[\s\S]*?\?>|<!--[\s\S]*?-->/g, '').trim() === '') {
    throw new ConfigError([{ message: 'the document is empty: it has no root element', line: 1 }])
  }
  const valid = XMLValidator.validate(text)
  if (valid !== true) {
    const at = valid.err.col === undefined ? '' : ` at column ${valid.err.col}`
    throw new ConfigError([{ message: `malformed XML${at}: ${validatorMessage(valid.err.msg)}`, line: valid.err.line }])
  }
  let nodes: Node[]
  try {
    nodes = parser.parse(text) as Node[]
  } catch (err) {
    // The parser's own limits (nesting depth…) are malformed input too, not a crash.
    const message = (err as Error).message
    throw new ConfigError([{ message: `malformed XML: ${PARSER_MESSAGES.has(message) ? message : 'the document cannot be parsed'}` }])
  }
  const problems: { message: string, line: number }[] = []
  let root: XmlElement | undefined
  for (const node of nodes) {
    const key = Object.keys(node).find((k) => k !== ':@')
    if (key === undefined || key === '#comment' || key === '#text' || key.startsWith('?')) continue
    const element = buildElement(src, node, key, new Map(), problems)
    // The validator lets a second root through when one of them is self-closing.
    if (root !== undefined) throw new ConfigError([{ message: `a document has one root element; <${key}> is a second one`, line: element.line }])
    root = element
  }
  if (problems.length > 0) throw new ConfigError(problems)
  if (root === undefined) throw new ConfigError([{ message: 'the document has no root element' }])
  return root
}

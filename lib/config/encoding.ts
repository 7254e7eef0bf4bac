import { ConfigError } from './errors.js'

// The encodings Repose's parser reads and this one honours, by the names an
// XML declaration may give them (IANA names and aliases, case-insensitive).
type Encoding = 'utf-8' | 'utf-16' | 'latin1'
const NAMES: Record<string, Encoding> = {
  'utf-8': 'utf-8',
  utf8: 'utf-8',
  // US-ASCII is UTF-8's first 128 characters: a byte above them is invalid either way.
  'us-ascii': 'utf-8',
  ascii: 'utf-8',
  'utf-16': 'utf-16',
  'utf-16le': 'utf-16',
  'utf-16be': 'utf-16',
  'iso-8859-1': 'latin1',
  iso8859_1: 'latin1',
  'iso_8859-1': 'latin1',
  'iso8859-1': 'latin1',
  'iso-ir-100': 'latin1',
  latin1: 'latin1',
  l1: 'latin1',
  cp819: 'latin1',
  ibm819: 'latin1',
  csisolatin1: 'latin1'
}

// `encoding="…"` of an XML declaration at the very start (XML 1.0 §4.3.3, EncName).
const DECLARATION = /^<\?xml\s[^>]*?\bencoding\s*=\s*(["'])([A-Za-z][\w.-]*)\1/
const SUPPORTED = 'UTF-8, UTF-16 or ISO-8859-1'

/** The encoding an XML declaration at the start of `text` names, if any. */
export function declaredEncoding (text: string): string | undefined {
  return DECLARATION.exec(text)?.[2]
}

/**
 * Refuses a declared encoding this parser does not honour. `text` is
 * already characters (inline XML, or a file decoded by decodeConfig).
 */
export function checkDeclaredEncoding (text: string): void {
  const name = declaredEncoding(text)
  if (name !== undefined && NAMES[name.toLowerCase()] === undefined) throw unsupported(name)
}

const unsupported = (name: string): ConfigError =>
  new ConfigError([{ message: `the XML declaration's encoding "${name}" is not supported: save the file as ${SUPPORTED} and declare that`, line: 1 }])

const fail = (message: string): ConfigError => new ConfigError([{ message, line: 1 }])

/**
 * A config file's bytes as text, as XML 1.0 Appendix F and Repose read them: a
 * byte order mark or the UTF-16 form of `<?` says UTF-16 (or UTF-8), else the
 * declaration's encoding, else UTF-8. Bytes that are not valid in that
 * encoding are refused, never replaced.
 */
export function decodeConfig (bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let sniffed: 'utf-8' | 'utf-16le' | 'utf-16be' | undefined
  let start = 0
  if (b[0] === 0xEF && b[1] === 0xBB && b[2] === 0xBF) {
    sniffed = 'utf-8'
    start = 3
  } else if (b[0] === 0xFF && b[1] === 0xFE) {
    sniffed = 'utf-16le'
    start = 2
  } else if (b[0] === 0xFE && b[1] === 0xFF) {
    sniffed = 'utf-16be'
    start = 2
  } else if (b[0] === 0x3C && b[1] === 0x00 && b[2] === 0x3F && b[3] === 0x00) {
    sniffed = 'utf-16le'
  } else if (b[0] === 0x00 && b[1] === 0x3C && b[2] === 0x00 && b[3] === 0x3F) {
    sniffed = 'utf-16be'
  }
  const body = b.subarray(start)
  if (sniffed === 'utf-16le' || sniffed === 'utf-16be') {
    const text = decode(body, sniffed, 'UTF-16')
    const name = declaredEncoding(text)
    if (name !== undefined && NAMES[name.toLowerCase()] !== 'utf-16') throw fail(`the file is UTF-16 (by its first bytes) but its XML declaration says encoding "${name}"`)
    return text
  }
  // The declaration is ASCII in every encoding read here.
  const name = declaredEncoding(body.subarray(0, 256).toString('latin1'))
  const declared = name === undefined ? 'utf-8' : NAMES[name.toLowerCase()]
  if (declared === undefined) throw unsupported(name!)
  if (declared === 'utf-16') throw fail(`the XML declaration says encoding "${name!}" but the file does not start as UTF-16 does (a byte order mark or <?xml in two-byte units)`)
  if (declared === 'latin1') {
    if (sniffed === 'utf-8') throw fail(`the file starts with a UTF-8 byte order mark but its XML declaration says encoding "${name!}"`)
    return body.toString('latin1')
  }
  return decode(body, 'utf-8', name === undefined ? 'UTF-8 (the default when the XML declaration names no encoding)' : 'UTF-8')
}

function decode (bytes: Buffer, encoding: 'utf-8' | 'utf-16le' | 'utf-16be', label: string): string {
  try {
    return new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    throw fail(`the file is not valid ${label}: declare its real encoding (${SUPPORTED}) or convert it`)
  }
}

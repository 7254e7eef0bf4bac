// A minimal ASN.1 reader for the structures PKCS#12, PKCS#8 and Sun's key
// protector use. It reads DER and the BER variants found in real PKCS#12 files
// (indefinite lengths, constructed OCTET STRINGs, as some Windows exports
// write them). Every read is bounds-checked: a malformed input throws
// Asn1Error, never reads past the buffer, and cannot recurse without limit.

export class Asn1Error extends Error {
  override readonly name = 'Asn1Error'
}

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
  /** [0] constructed (EXPLICIT tagging) */
  CTX0: 0xa0
} as const

const MAX_DEPTH = 32

export class Asn1 {
  constructor (
    /** The identifier octet (class, constructed bit and tag number). */
    readonly tag: number,
    /** The contents octets (for an indefinite length: without the end-of-contents marker). */
    readonly value: Buffer,
    /** The whole encoding: identifier, length and contents. */
    readonly encoded: Buffer,
    private readonly depth: number
  ) {}

  get constructed (): boolean { return (this.tag & 0x20) !== 0 }
  /** Tag number of a context-specific tag ([n]), or -1. */
  get context (): number { return (this.tag & 0xc0) === 0x80 ? this.tag & 0x1f : -1 }

  children (): Asn1[] {
    if (!this.constructed) throw new Asn1Error(`expected a constructed value, found tag 0x${hex(this.tag)}`)
    return readAll(this.value, this.depth + 1)
  }

  /** Children of a SEQUENCE (or SET), checked to number at least `min`. */
  seq (what: string, min = 0, tag: number = TAG.SEQUENCE): Asn1[] {
    this.expect(tag, what)
    const c = this.children()
    if (c.length < min) throw new Asn1Error(`${what}: expected at least ${min} elements, found ${c.length}`)
    return c
  }

  expect (tag: number, what: string): this {
    if (this.tag !== tag) throw new Asn1Error(`${what}: expected tag 0x${hex(tag)}, found 0x${hex(this.tag)}`)
    return this
  }

  /** A dotted OBJECT IDENTIFIER. */
  oid (what = 'object identifier'): string {
    this.expect(TAG.OID, what)
    const v = this.value
    if (v.length === 0 || (v[v.length - 1]! & 0x80) !== 0) throw new Asn1Error(`${what}: malformed object identifier`)
    const arcs: number[] = []
    let n = 0
    for (const b of v) {
      if (n > 2 ** 45) throw new Asn1Error(`${what}: object identifier arc too large`)
      n = n * 128 + (b & 0x7f)
      if ((b & 0x80) === 0) {
        if (arcs.length === 0) arcs.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80)
        else arcs.push(n)
        n = 0
      }
    }
    return arcs.join('.')
  }

  /** A non-negative INTEGER that fits a safe JS number. */
  int (what = 'integer'): number {
    this.expect(TAG.INTEGER, what)
    const v = this.value
    if (v.length === 0 || (v[0]! & 0x80) !== 0) throw new Asn1Error(`${what}: expected a non-negative integer`)
    if (v.length > 7) throw new Asn1Error(`${what}: integer too large`)
    let n = 0
    for (const b of v) n = n * 256 + b
    return n
  }

  /**
   * The bytes of an OCTET STRING, whatever its tag (so it also reads an
   * IMPLICIT [n] one); a constructed (BER) string is the concatenation of its
   * segments.
   */
  octets (what = 'octet string'): Buffer {
    if (!this.constructed) return this.value
    return Buffer.concat(this.children().map((c) => c.octets(what)))
  }

  /** The single value inside an EXPLICIT [n] tag. */
  explicit (n: number, what: string): Asn1 {
    if (this.context !== n || !this.constructed) throw new Asn1Error(`${what}: expected [${n}], found tag 0x${hex(this.tag)}`)
    const c = this.children()
    if (c.length !== 1) throw new Asn1Error(`${what}: expected one value inside [${n}], found ${c.length}`)
    return c[0]!
  }
}

function hex (n: number): string { return n.toString(16).padStart(2, '0') }

/** Reads the one value that `buf` must consist of. */
export function readDer (buf: Buffer, what = 'structure'): Asn1 {
  const all = readAll(buf, 0)
  if (all.length !== 1) throw new Asn1Error(`${what}: expected one ASN.1 value, found ${all.length}`)
  return all[0]!
}

function readAll (buf: Buffer, depth: number): Asn1[] {
  const out: Asn1[] = []
  let pos = 0
  while (pos < buf.length) {
    const r = readOne(buf, pos, depth)
    if (r === null) throw new Asn1Error('unexpected end-of-contents marker')
    out.push(r.node)
    pos = r.next
  }
  return out
}

/** One TLV at `pos`; null for an end-of-contents marker (00 00). */
function readOne (buf: Buffer, pos: number, depth: number): { node: Asn1, next: number } | null {
  if (depth > MAX_DEPTH) throw new Asn1Error('nested too deeply')
  if (pos + 2 > buf.length) throw new Asn1Error('truncated')
  const tag = buf[pos]!
  if ((tag & 0x1f) === 0x1f) throw new Asn1Error('high tag numbers are not used in these formats')
  let len = buf[pos + 1]!
  let p = pos + 2
  if (tag === 0 && len === 0) return null
  if (len === 0x80) {
    // Indefinite length: constructed only; the contents run to the matching 00 00.
    if ((tag & 0x20) === 0) throw new Asn1Error('indefinite length on a primitive value')
    const start = p
    for (;;) {
      if (p >= buf.length) throw new Asn1Error('truncated (no end-of-contents marker)')
      const r = readOne(buf, p, depth + 1)
      if (r === null) return { node: new Asn1(tag, buf.subarray(start, p), buf.subarray(pos, p + 2), depth), next: p + 2 }
      p = r.next
    }
  }
  if (len > 0x80) {
    const n = len & 0x7f
    if (n > 4) throw new Asn1Error('length too large')
    if (p + n > buf.length) throw new Asn1Error('truncated')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!
    p += n
  }
  if (p + len > buf.length) throw new Asn1Error('truncated')
  return { node: new Asn1(tag, buf.subarray(p, p + len), buf.subarray(pos, p + len), depth), next: p + len }
}

/** An AlgorithmIdentifier: its OID and its parameters (undefined when absent or NULL). */
export function algorithm (node: Asn1, what: string): { oid: string, params: Asn1 | undefined } {
  const [id, params] = node.seq(what, 1)
  return { oid: id!.oid(what), params: params === undefined || params.tag === TAG.NULL ? undefined : params }
}

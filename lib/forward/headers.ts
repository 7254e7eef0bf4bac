import type { IncomingHttpHeaders } from 'node:http'

type Headers = Record<string, unknown>

// Hop-by-hop and proxy-only request headers (RFC 9110 §7.6.1): `connection`
// and the names it lists, and these, dropped before the pool adds its own.
// `expect` goes too: undici refuses it, and Node's server has already answered
// a client's 100-continue.
const REQUEST_DROPPED: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'expect'])

// The same for responses: these belong to the upstream's connection, and the
// gateway frames its response to the client itself. A `connection` header
// left in would also override the client's own `Connection: close`.
const RESPONSE_DROPPED: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding'])

// What undici must frame itself, whatever a caller's rewrite put back.
const FRAMING: ReadonlySet<string> = new Set(['connection', 'transfer-encoding'])

// What the direct path drops of a client's request at once: the hop-by-hop
// headers and the framing, which undici does itself for the body it sends.
const DIRECT_DROPPED: ReadonlySet<string> = new Set([...REQUEST_DROPPED, ...FRAMING])

/** The client's request headers to forward on the direct path: a copy, without the hop-by-hop and framing ones. */
export const forwardableRequestHeaders = (headers: IncomingHttpHeaders): Headers => copyWithout(headers, DIRECT_DROPPED)

/** `headers` (reply-from's copy of the client's), or a copy without the hop-by-hop ones when it has any. */
export const dropHopByHop = <T extends Headers>(headers: T): T => without(headers, REQUEST_DROPPED)

/** `headers` after a caller's rewrite, or a copy without `connection` (and what it names) and `transfer-encoding`. */
export const dropFraming = <T extends Headers>(headers: T): T => without(headers, FRAMING)

/** The upstream's response headers (undici's, lower-cased), or a copy without the hop-by-hop ones, for reply-from. */
export const dropResponseHopByHop = (headers: IncomingHttpHeaders): IncomingHttpHeaders => without(headers, RESPONSE_DROPPED)

/**
 * Sets `headers` on `reply`, less HTTP/2 pseudo-headers; `upstream`: they are
 * the upstream's own, whose hop-by-hop ones are skipped here, as
 * dropResponseHopByHop would drop them, without the copy it makes of nearly
 * every response (nginx always sends `connection`).
 */
export function setResponseHeaders (reply: { header: (name: string, value: string | string[]) => unknown }, headers: IncomingHttpHeaders, upstream: boolean): void {
  const named = upstream ? namedBy(headers.connection) : undefined
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 || (upstream && (RESPONSE_DROPPED.has(name) || named?.includes(name) === true))) continue
    reply.header(name, headers[name]!)
  }
}

/**
 * `headers` itself when it holds none of `dropped`, else a copy without them.
 * A copy, not `delete`: deleting a property turns an object into a slow
 * dictionary, and every header object (nginx always sends `connection`) would
 * then be read slowly by everything after (measured: BENCHMARKS.md, issue 19).
 */
function without<T extends Headers> (headers: T, dropped: ReadonlySet<string>): T {
  for (const name of dropped) {
    if (headers[name] !== undefined) return copyWithout(headers, dropped) as T
  }
  return headers
}

function copyWithout (headers: Headers, dropped: ReadonlySet<string>): Headers {
  const named = namedBy(headers.connection as string | string[] | undefined)
  const kept: Headers = {}
  for (const name in headers) {
    if (!dropped.has(name) && named?.includes(name) !== true) kept[name] = headers[name]
  }
  return kept
}

/** The other header names a `connection` value lists; what nearly every peer sends names none. */
function namedBy (connection: string | string[] | undefined): string[] | undefined {
  return connection === undefined || connection === 'keep-alive' || connection === 'close' ? undefined : namesIn(connection)
}

/** The header names a `connection` value lists (comma-separated, maybe repeated), lower-cased. */
function namesIn (connection: string | string[]): string[] {
  const list = typeof connection === 'string' ? connection : connection.join(',')
  const names: string[] = []
  let start = 0
  for (let i = 0; i <= list.length; i++) {
    if (i < list.length && list.charCodeAt(i) !== 44) continue
    const name = list.slice(start, i).trim().toLowerCase()
    if (name !== '') names.push(name)
    start = i + 1
  }
  return names
}

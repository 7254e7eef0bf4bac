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

/** The client's request headers to forward: a copy, without the hop-by-hop ones. */
export const forwardableRequestHeaders = (headers: IncomingHttpHeaders): Headers => copyWithout(headers, REQUEST_DROPPED)

/** `headers` (reply-from's copy of the client's), or a copy without the hop-by-hop ones when it has any. */
export const dropHopByHop = <T extends Headers>(headers: T): T => without(headers, REQUEST_DROPPED)

/** `headers` after a caller's rewrite, or a copy without `connection` (and what it names) and `transfer-encoding`. */
export const dropFraming = <T extends Headers>(headers: T): T => without(headers, FRAMING)

/** The upstream's response headers (undici's, lower-cased), or a copy without the hop-by-hop ones; every forwarded response passes here. */
export const dropResponseHopByHop = (headers: IncomingHttpHeaders): IncomingHttpHeaders => without(headers, RESPONSE_DROPPED)

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
  const connection = headers.connection as string | string[] | undefined
  // What nearly every peer sends names nothing else to drop.
  const named = connection === undefined || connection === 'keep-alive' || connection === 'close' ? undefined : namesIn(connection)
  const kept: Headers = {}
  for (const name in headers) {
    if (!dropped.has(name) && named?.includes(name) !== true) kept[name] = headers[name]
  }
  return kept
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

import type { IncomingHttpHeaders } from 'node:http'

// Hop-by-hop and proxy-only request headers (RFC 9110 §7.6.1). reply-from
// already drops `connection` and the names it lists; these go as well, before
// the pool adds its own. `expect` goes too: undici refuses it, and Node's server
// has already answered a client's 100-continue.
const DROPPED = ['keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'expect']

export function dropHopByHop<T extends Record<string, unknown>> (headers: T): T {
  for (const name of DROPPED) {
    if (headers[name] !== undefined) delete headers[name]
  }
  return headers
}

// The same for responses: these belong to the upstream's connection, and the
// gateway frames its response to the client itself. A `connection` header
// left in would also override the client's own `Connection: close`.
const DROPPED_FROM_RESPONSES = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding']

/** Drops the upstream's hop-by-hop headers from `headers` (undici's, lower-cased); every forwarded response passes here. */
export function dropResponseHopByHop (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  dropConnection(headers)
  for (const name of DROPPED_FROM_RESPONSES) {
    if (headers[name] !== undefined) delete headers[name]
  }
  return headers
}

/** Drops `connection` and the headers it names (RFC 9110 §7.6.1). */
export function dropConnection (headers: Record<string, unknown>): void {
  const connection = headers.connection as string | string[] | undefined
  if (connection === undefined) return
  delete headers.connection
  // What nearly every peer sends names nothing else to drop.
  if (connection !== 'keep-alive' && connection !== 'close') dropNamed(headers, connection)
}

/** Drops the headers a `connection` value names (a comma-separated list, maybe repeated). */
function dropNamed (headers: Record<string, unknown>, connection: string | string[]): void {
  const list = typeof connection === 'string' ? connection : connection.join(',')
  let start = 0
  for (let i = 0; i <= list.length; i++) {
    if (i < list.length && list.charCodeAt(i) !== 44) continue
    const name = list.slice(start, i).trim().toLowerCase()
    if (name !== '' && headers[name] !== undefined) delete headers[name]
    start = i + 1
  }
}

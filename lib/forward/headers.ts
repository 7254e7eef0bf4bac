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

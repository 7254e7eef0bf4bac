import type { PoolSettings } from '../config/schema.js'

/** The largest delay a Node timer takes: "until the server closes it". */
export const FOREVER = 2147483647

// A server-announced `Keep-Alive: timeout=N` is honoured minus this margin,
// so the pool never writes on a socket the server is about to close.
export const KEEPALIVE_MARGIN = 1000

/** `keepalive.timeout` 1 means Repose's "connection: close on every request". */
export const closesEachRequest = (s: PoolSettings): boolean => s['keepalive.timeout'] === 1

/** Options of every undici Client of a pool: one socket each, timeouts and keep-alive. */
export function clientOptions (s: PoolSettings) {
  const keepalive = s['keepalive.timeout']
  return {
    pipelining: 1,
    // undici's headersTimeout and bodyTimeout are both inactivity timers; 0 disables them.
    headersTimeout: s['http.socket.timeout'],
    bodyTimeout: s['http.socket.timeout'],
    keepAliveTimeout: keepalive > 1 ? keepalive : FOREVER,
    keepAliveMaxTimeout: FOREVER,
    keepAliveTimeoutThreshold: KEEPALIVE_MARGIN,
    allowH2: s.http2
  }
}

/** Options of the socket connector: connect timeout (TCP and TLS) and read buffer. */
export function connectorOptions (s: PoolSettings) {
  const bufferSize = s['http.socket.buffer-size']
  return {
    timeout: s['http.connection.timeout'],
    // `http.socket.buffer-size` is the socket's readable highWaterMark; 0 keeps undici's default.
    ...(bufferSize > 0 ? { highWaterMark: bufferSize } : {}),
    allowH2: s.http2
  }
}

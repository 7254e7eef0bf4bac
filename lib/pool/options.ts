import type { PoolSettings } from '../config/schema.js'
import { FINE_TIMEOUT_MS } from './exchange.js'

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
  // undici's headersTimeout and bodyTimeout are both inactivity timers; 0 disables them.
  // Under a second, the pool times sockets itself (lib/pool/exchange.ts).
  const socketTimeout = s['http.socket.timeout'] < FINE_TIMEOUT_MS ? 0 : s['http.socket.timeout']
  return {
    pipelining: 1,
    headersTimeout: socketTimeout,
    bodyTimeout: socketTimeout,
    keepAliveTimeout: keepalive > 1 ? keepalive : FOREVER,
    keepAliveMaxTimeout: FOREVER,
    keepAliveTimeoutThreshold: KEEPALIVE_MARGIN,
    allowH2: s.http2
  }
}

/** Options of the socket connector: its read buffer. The connect timeout is the pool's own (lib/pool/connect-timeout.ts). */
export function connectorOptions (s: PoolSettings) {
  const bufferSize = s['http.socket.buffer-size']
  return {
    timeout: 0,
    // `http.socket.buffer-size` is the socket's readable highWaterMark; 0 keeps undici's default.
    ...(bufferSize > 0 ? { highWaterMark: bufferSize } : {}),
    allowH2: s.http2
  }
}

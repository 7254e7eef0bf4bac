import type { Socket } from 'node:net'
import { errors } from 'undici'
import type { ConnectCallback } from './budget.js'

/** undici's connector: it hands back the socket it is connecting. */
export type SocketConnector = (options: object, callback: ConnectCallback) => Socket | undefined

/**
 * `http.connection.timeout` on the pool's own timer: undici's connect timer
 * ticks every half second, so a timeout under a second fired up to a second
 * late (three attempts at 300 ms took about 3 s). The socket is destroyed with
 * undici's ConnectTimeoutError, so the connector reports it as its own.
 */
export function withConnectTimeout (connect: SocketConnector, ms: number): SocketConnector {
  if (ms <= 0) return connect
  return (options, callback) => {
    // The connector may call back before it returns the socket: the timer is set first.
    const connecting: { socket?: Socket } = {}
    const timer = setTimeout(() => { connecting.socket?.destroy(new errors.ConnectTimeoutError(`connect timed out after ${ms} ms`)) }, ms)
    connecting.socket = connect(options, (err, connected) => {
      clearTimeout(timer)
      callback(err, connected)
    })
    return connecting.socket
  }
}

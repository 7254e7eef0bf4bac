import type { Socket } from 'node:net'
import { isIP } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { inspect, type InspectOptions } from 'node:util'
import { errors, type Dispatcher } from 'undici'
import { inspectAs } from '../config/settings.js'
import { hostOf, type ProxyTarget } from '../config/values.js'
import type { Connector } from './budget.js'
import { mergeHeaders } from './static-headers.js'

// A CONNECT response larger than this is not a proxy talking.
const MAX_CONNECT_RESPONSE = 16384

export class ProxyError extends errors.UndiciError {
  constructor (message: string) {
    super(message)
    this.name = 'ProxyError'
    this.code = 'FST_HTTP_POOLS_PROXY'
  }
}

/**
 * `http.route.default-proxy`: http targets are sent to the proxy in absolute
 * form; https targets get a CONNECT tunnel with the pool's TLS applied inside.
 * Both go through the pool's own connector, so its budget, limits and
 * timeouts still apply.
 */
export class HttpProxy {
  readonly origin: string
  private readonly authorization: Record<string, string>

  constructor (private readonly target: ProxyTarget) {
    this.origin = `${target.protocol}//${hostOf(target)}:${target.port}`
    this.authorization = target.username || target.password
      ? { 'proxy-authorization': `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}` }
      : {}
  }

  // Its fields hold the credentials and the Proxy-Authorization value.
  toJSON (): object { return { origin: this.origin } }
  [inspect.custom] (_depth: number, options: InspectOptions): string { return inspectAs(this, options) }

  /** An http request goes to the proxy, its path the absolute URL. https ones pass unchanged: they tunnel. */
  route (opts: Dispatcher.DispatchOptions): Dispatcher.DispatchOptions {
    const origin = new URL(String(opts.origin))
    if (origin.protocol !== 'http:') return opts
    return {
      ...opts,
      origin: this.origin,
      path: origin.origin + opts.path,
      headers: mergeHeaders(opts.headers as never, { host: origin.host, ...this.authorization })
    }
  }

  /**
   * Connects sockets for https targets: to the proxy through `toProxy`, a CONNECT
   * exchange, then TLS to the target over the tunnel. `toProxy` connections
   * for http targets are plain sockets to the proxy.
   */
  connector (toProxy: Connector, tls: ConnectionOptions, timeout: number): Connector {
    const proxyOrigin = { hostname: this.target.hostname, host: this.target.hostname, port: this.target.port, protocol: this.target.protocol }
    return (options, callback) => {
      const o = options as { hostname: string, host: string, port: number | string, protocol: string, servername?: string }
      if (o.protocol !== 'https:') {
        toProxy({ ...options, ...proxyOrigin }, callback)
        return
      }
      let done = false
      // Whichever socket the tunnel has got to: a timeout closes it, so none outlives its connect.
      let open: Socket | undefined
      const finish = (err: Error | null, socket: Socket | null): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (err !== null) open?.destroy()
        callback(err, socket)
      }
      const timer = timeout > 0
        ? setTimeout(() => finish(new errors.ConnectTimeoutError(`connect through proxy timed out after ${timeout} ms`), null), timeout)
        : undefined
      toProxy({ ...proxyOrigin }, (err, raw) => {
        if (err || !raw) return finish(err, null)
        if (done) { raw.destroy(); return }
        open = raw
        const authority = `${o.hostname.includes(':') ? `[${o.hostname}]` : o.hostname}:${o.port || 443}`
        const head = [`CONNECT ${authority} HTTP/1.1`, `host: ${authority}`, ...Object.entries(this.authorization).map(([k, v]) => `${k}: ${v}`)]
        raw.write(head.join('\r\n') + '\r\n\r\n')
        readConnectResponse(raw, (err2) => {
          if (err2 || done) {
            raw.destroy()
            return finish(err2 ?? null, null)
          }
          const servername = o.servername ?? (isIP(o.hostname) ? undefined : o.hostname)
          const secure = tlsConnect({ ...tls, socket: raw, ...(servername ? { servername } : {}) })
          open = secure
          secure.once('secureConnect', () => finish(null, secure))
          secure.once('error', (e) => { secure.destroy(); finish(e, null) })
        })
      })
    }
  }
}

function readConnectResponse (socket: Socket, done: (err: Error | null) => void): void {
  let buffered = Buffer.alloc(0)
  const cleanup = (): void => {
    socket.off('data', onChunk)
    socket.off('error', onSocketError)
    socket.off('close', onClose)
  }
  const onSocketError = (err: Error): void => { cleanup(); done(err) }
  const onClose = (): void => { cleanup(); done(new ProxyError('proxy closed the connection during CONNECT')) }
  const onChunk = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk])
    const end = buffered.indexOf('\r\n\r\n')
    if (end === -1) {
      if (buffered.length > MAX_CONNECT_RESPONSE) { cleanup(); done(new ProxyError('proxy CONNECT response is too large')) }
      return
    }
    cleanup()
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(buffered.subarray(0, end).toString('latin1'))
    if (!status || status[1] !== '200') return done(new ProxyError(`proxy refused the tunnel: ${status ? status[1] : 'malformed response'}`))
    // Bytes after the CONNECT response belong to the tunnel (TLS); none are expected before our ClientHello.
    if (end + 4 < buffered.length) socket.unshift(buffered.subarray(end + 4))
    done(null)
  }
  socket.on('data', onChunk)
  socket.on('error', onSocketError)
  socket.on('close', onClose)
}

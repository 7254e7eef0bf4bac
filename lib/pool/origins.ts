import type { Socket } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { buildConnector, Client, errors, Pool, type Dispatcher } from 'undici'
import type { PoolSettings } from '../config/schema.js'
import { parseProxy } from '../config/values.js'
import { refusedController, type Handler } from '../handler/decorator.js'
import { ConnectionBudget, type Connector } from './budget.js'
import { ClosableDispatcher } from './closable.js'
import { hasConnectionFaults, isH2, WatchedClient, watchRequest } from './connection-faults.js'
import { withConnectTimeout, type SocketConnector } from './connect-timeout.js'
import { ConnectionLifetime } from './lifetime.js'
import { clientOptions, closesEachRequest, connectorOptions } from './options.js'
import { HttpProxy } from './proxy.js'

export interface PoolStats {
  connected: number
  free: number
  pending: number
  queued: number
  running: number
  size: number
}

/**
 * The sockets of one pool: per-origin undici Pools of single-socket Clients,
 * so that every socket passes through the pool's connection budget, socket
 * options, lifetime and forward proxy. Takes controller-based handlers only:
 * the layers above it adapt what callers hand in.
 */
export class OriginPools extends ClosableDispatcher {
  readonly budget: ConnectionBudget
  // Not undici's Agent: it drops an origin's Pool when its last socket closes
  // even with requests still queued, and a new Pool then breaks max-per-route
  // and lets close() resolve before those requests finish.
  private readonly origins = new Map<string, Pool>()
  private readonly newPool: (origin: string) => Pool
  private closing: Promise<void> | undefined
  private readonly proxy: HttpProxy | undefined

  constructor (settings: PoolSettings, tls: ConnectionOptions = {}) {
    super()
    const budget = new ConnectionBudget(settings['http.conn-manager.max-total'])
    const connectOpts = connectorOptions(settings)
    const proxyValue = settings['http.route.default-proxy']
    const proxyTarget = proxyValue === null ? undefined : parseProxy(proxyValue)
    this.proxy = proxyTarget?.ok ? new HttpProxy(proxyTarget.value) : undefined
    const connectTimeout = settings['http.connection.timeout']
    const connector = (options: object): Connector =>
      withConnectTimeout(buildConnector(options as buildConnector.BuildOptions) as unknown as SocketConnector, connectTimeout)
    let base = connector({ ...connectOpts, ...tls })
    if (this.proxy) {
      const alpn = settings.http2 ? ['h2', 'http/1.1'] : ['http/1.1']
      base = this.proxy.connector(connector(connectOpts), { ...tls, ALPNProtocols: alpn }, connectTimeout)
    }
    const noDelay = settings['http.tcp.nodelay']
    const lifetimeMs = settings['connection.max-lifetime']
    const lifetime = lifetimeMs > 0 ? new ConnectionLifetime(lifetimeMs) : undefined
    // keepalive.timeout 1 over HTTP/2, where undici ignores `connection: close`:
    // a session's life is its one request (it closes once idle, never during it).
    const oneRequest = closesEachRequest(settings) ? new ConnectionLifetime(0) : undefined
    const onSocket = (socket: Socket, client: Client): void => {
      socket.setNoDelay(noDelay)
      ;(client as WatchedClient).faults.watch(socket)
      lifetime?.track(client, socket)
      if (isH2(socket)) oneRequest?.track(client, socket)
    }
    const clientOpts = clientOptions(settings)
    const clientsOf = (connector: Connector) => (origin: URL, opts: object): Client => {
      const client: WatchedClient = new WatchedClient(origin, { ...opts, connect: budget.connector(() => client, connector, onSocket) as never })
      // With one socket per client, 'drain' means the socket just became idle.
      client.on('drain', () => {
        lifetime?.check(client)
        oneRequest?.check(client)
        budget.poke()
      })
      return client
    }
    this.newPool = (origin) => {
      // A unix socket origin gets the pool's TLS, limits and budget like any
      // other, on sockets to its path (never through the proxy).
      const unix = unixSocket(origin)
      const connector = unix === undefined ? base : buildConnector({ ...connectOpts, ...tls, socketPath: unix.path } as buildConnector.BuildOptions) as unknown as Connector
      return new Pool(unix?.url ?? origin, {
        ...clientOpts,
        connections: settings['http.conn-manager.max-per-route'],
        connect: connector as never,
        factory: clientsOf(connector) as never
      })
    }
    this.budget = budget
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
    if (this.proxy !== undefined) opts = this.proxy.route(opts)
    if (this.closing !== undefined) {
      const err = new errors.ClientDestroyedError()
      handler.onResponseError?.(refusedController(err), err)
      return false
    }
    const origin = String(opts.origin)
    const pool = this.originPool(origin)
    if (!hasConnectionFaults(origin)) return pool.dispatch(opts, handler)
    const [watched, request] = watchRequest(opts, handler)
    return pool.dispatch(watched, request)
  }

  private originPool (origin: string): Pool {
    let pool = this.origins.get(origin)
    if (pool === undefined) {
      const created = this.newPool(origin)
      // Forget an origin only once it has neither sockets nor requests.
      const forget = (): void => {
        const { connected, size } = created.stats
        if (connected === 0 && size === 0 && this.origins.get(origin) === created && this.closing === undefined) {
          this.origins.delete(origin)
          created.close().catch(() => {})
        }
      }
      created.on('disconnect', forget).on('connectionError', forget)
      this.origins.set(origin, created)
      pool = created
    }
    return pool
  }

  protected closeAll (): Promise<void> {
    this.closing ??= Promise.all([...this.origins.values()].map(async (p) => await p.close())).then(() => this.budget.close())
    return this.closing
  }

  protected async destroyAll (err: Error | null): Promise<void> {
    this.budget.close()
    this.closing ??= Promise.resolve()
    await Promise.all([...this.origins.values()].map(async (p) => await p.destroy(err)))
  }

  /** undici's pool counters, summed over the origins of this pool. */
  get stats (): PoolStats {
    const sum: PoolStats = { connected: 0, free: 0, pending: 0, queued: 0, running: 0, size: 0 }
    for (const pool of this.origins.values()) {
      const s = pool.stats
      sum.connected += s.connected
      sum.free += s.free
      sum.pending += s.pending
      sum.queued += s.queued
      sum.running += s.running
      sum.size += s.size
    }
    return sum
  }
}

/**
 * `unix+http://%2Fpath%2Fto.sock` (reply-from's form of a unix socket origin):
 * the socket's path, and the URL the requests on it name (Host: localhost,
 * as curl --unix-socket sends).
 */
export function unixSocket (origin: string): { path: string, url: string } | undefined {
  if (!origin.startsWith('unix+')) return undefined
  const url = new URL(origin)
  return { path: decodeURIComponent(url.host), url: url.protocol === 'unix+https:' ? 'https://localhost' : 'http://localhost' }
}

import type { Socket } from 'node:net'
import { systemClock, type Clock } from '../time/clock.js'
import { closedByPool } from './errors.js'

/** What the lifetime needs of an undici Client: whether a request is on it. */
export interface ClientLoad { stats: { running: number, pending: number } }

const isIdle = (client: ClientLoad): boolean => {
  const { running, pending } = client.stats
  return running === 0 && pending === 0
}

interface Tracked { socket: Socket, expires: number }

/**
 * `x:connection.max-lifetime`: a socket older than its lifetime is not
 * reused. It closes once idle, never during a request; undici's Client then
 * connects afresh for the next one, so hosts added behind a load balancer get
 * traffic. Jitter shortens each lifetime by up to 10% so a pool does not
 * reconnect all at once. (undici's own clientTtl can hang with connection
 * limits, so it is not used.)
 */
export class ConnectionLifetime {
  private readonly sockets = new WeakMap<ClientLoad, Tracked>()

  constructor (private readonly ms: number, private readonly random: () => number = Math.random, private readonly clock: Clock = systemClock) {}

  track (client: ClientLoad, socket: Socket): void {
    const life = this.ms * (1 - 0.1 * this.random())
    const tracked = { socket, expires: this.clock.now() + life }
    this.sockets.set(client, tracked)
    this.arm(client, tracked, life)
  }

  /** Called when the client's socket may have become idle. */
  check (client: ClientLoad): void {
    const tracked = this.sockets.get(client)
    if (tracked === undefined || tracked.socket.destroyed || tracked.expires > this.clock.now() || !isIdle(client)) return
    this.sockets.delete(client)
    tracked.socket.destroy(closedByPool('x:connection.max-lifetime reached'))
  }

  /**
   * An idle socket expires on time too, not only when it is next used. A timer
   * may fire a little before `expires` by the monotonic clock: it is armed
   * again for what is left, so an idle socket never outlives its lifetime.
   */
  private arm (client: ClientLoad, tracked: Tracked, ms: number): void {
    const timer = this.clock.setTimeout(() => {
      tracked.socket.off('close', cancel)
      const left = tracked.expires - this.clock.now()
      if (left > 0 && !tracked.socket.destroyed) this.arm(client, tracked, left)
      else this.check(client)
    }, ms)
    timer.unref()
    const cancel = (): void => { this.clock.clearTimeout(timer) }
    tracked.socket.once('close', cancel)
  }
}

import type { Socket } from 'node:net'
import type { Client } from 'undici'

const isIdle = (client: Client): boolean => {
  const { running, pending } = client.stats
  return running === 0 && pending === 0
}

/**
 * `x:connection.max-lifetime`: a socket older than its lifetime is not
 * reused. It closes once idle, never during a request; undici's Client then
 * connects afresh for the next one, so hosts added behind a load balancer get
 * traffic. Jitter shortens each lifetime by up to 10% so a pool does not
 * reconnect all at once. (undici's own clientTtl can hang with connection
 * limits, so it is not used.)
 */
export class ConnectionLifetime {
  private readonly sockets = new WeakMap<Client, { socket: Socket, expires: number }>()

  constructor (private readonly ms: number, private readonly random: () => number = Math.random) {}

  track (client: Client, socket: Socket): void {
    const life = this.ms * (1 - 0.1 * this.random())
    this.sockets.set(client, { socket, expires: Date.now() + life })
    // An idle socket expires on time too, not only when it is next used.
    const timer = setTimeout(() => this.check(client), life)
    timer.unref()
    socket.once('close', () => clearTimeout(timer))
  }

  /** Called when the client's socket may have become idle. */
  check (client: Client): void {
    const tracked = this.sockets.get(client)
    if (tracked === undefined || tracked.socket.destroyed || tracked.expires > Date.now() || !isIdle(client)) return
    this.sockets.delete(client)
    tracked.socket.destroy()
  }
}

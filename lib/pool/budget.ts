import type { Socket } from 'node:net'
import type { Client } from 'undici'
import { errors } from 'undici'
import { closedByPool } from './errors.js'

export type ConnectCallback = (err: Error | null, socket: Socket | null) => void
export type Connector = (options: object, callback: ConnectCallback) => void

interface Slot { client: Client, socket: Socket | null }

/**
 * `http.conn-manager.max-total`: caps open sockets across every origin of a
 * pool. undici has no such cap, so each Client's connector asks here first.
 * At the cap the connect waits, and an idle socket of another client is
 * closed to make room, so no request waits while a connection sits idle.
 */
export class ConnectionBudget {
  private readonly slots = new Set<Slot>()
  private readonly waiters: Array<{ client: Client, start: (slot: Slot) => void }> = []
  private closed = false

  constructor (private readonly max: number) {}

  get open (): number { return this.slots.size }
  get waiting (): number { return this.waiters.length }

  /** A connector for one client: waits for a slot, then connects through `base`. */
  connector (client: () => Client, base: Connector, onSocket: (socket: Socket, client: Client) => void): Connector {
    return (options, callback) => {
      const start = (slot: Slot): void => {
        if (this.closed || slot.client.destroyed) {
          this.release(slot)
          callback(new errors.ClientDestroyedError(), null)
          return
        }
        base(options, (err, socket) => {
          if (err || !socket) {
            this.release(slot)
            callback(err, null)
            return
          }
          slot.socket = socket
          socket.once('close', () => this.release(slot))
          onSocket(socket, slot.client)
          callback(null, socket)
        })
      }
      if (this.closed) {
        callback(new errors.ClientDestroyedError(), null)
      } else if (this.slots.size < this.max) {
        start(this.take(client()))
      } else {
        this.waiters.push({ client: client(), start })
        this.evictIdle()
      }
    }
  }

  /** Called after a request settles: a socket may have just become idle. */
  poke (): void {
    if (this.waiters.length > 0) setImmediate(() => this.evictIdle())
  }

  /** Closes every idle socket now (the pool is being replaced: what is idle will not be used again). */
  closeIdle (why: string): void {
    for (const { client, socket } of this.slots) {
      if (socket === null || socket.destroyed) continue
      const { running, pending } = client.stats
      if (running === 0 && pending === 0) socket.destroy(closedByPool(why))
    }
  }

  /** Fails every waiting connect: the pool is closing. */
  close (): void {
    this.closed = true
    for (const w of this.waiters.splice(0)) w.start({ client: w.client, socket: null })
  }

  private take (client: Client): Slot {
    const slot = { client, socket: null }
    this.slots.add(slot)
    return slot
  }

  private release (slot: Slot): void {
    if (!this.slots.delete(slot)) return
    const next = this.waiters.shift()
    if (next) next.start(this.take(next.client))
  }

  private evictIdle (): void {
    let needed = this.waiters.length
    for (const slot of this.slots) {
      if (needed === 0) return
      const { client, socket } = slot
      if (socket === null || socket.destroyed) continue
      const { running, pending } = client.stats
      if (running === 0 && pending === 0 && !this.waiters.some((w) => w.client === client)) {
        socket.destroy(closedByPool('room for another origin at max-total'))
        needed--
      }
    }
  }
}

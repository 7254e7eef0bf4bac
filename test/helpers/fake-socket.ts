// Stand-ins for one socket and the undici Client that holds it, for the unit
// tests of the connection budget and lifetime: those decide when a socket is
// closed, from its client's load alone. The wire tests use real sockets.
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'

export class FakeSocket extends EventEmitter {
  destroyed = false
  destroy (): this {
    if (!this.destroyed) {
      this.destroyed = true
      this.emit('close')
    }
    return this
  }

  get asSocket (): Socket { return this as unknown as Socket }
}

export class FakeClient {
  destroyed = false
  stats = { running: 0, pending: 0 }
}

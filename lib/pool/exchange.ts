import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { HandlerDecorator, type Controller, type Handler, type Interceptor } from '../handler/decorator.js'

export interface ExchangeCounters { requests: number, errors: number }

/**
 * A pool's exchanges: counted, and those in flight tracked per origin
 * (cheaper than asking undici's pools). Its interceptor is the innermost
 * layer of every pool, so each exchange that reaches the sockets is counted once.
 */
export class Exchanges {
  readonly counters: ExchangeCounters = { requests: 0, errors: 0 }
  inFlight = 0
  private readonly byOrigin = new Map<string, number>()

  readonly interceptor: Interceptor = (dispatch) => (opts, handler) =>
    dispatch(opts, new CountedExchange(handler, this, String(opts.origin)))

  begin (origin: string): void {
    this.counters.requests++
    this.inFlight++
    this.byOrigin.set(origin, (this.byOrigin.get(origin) ?? 0) + 1)
  }

  end (origin: string, failed: boolean): void {
    if (failed) this.counters.errors++
    this.inFlight--
    const n = this.byOrigin.get(origin)! - 1
    if (n === 0) this.byOrigin.delete(origin)
    else this.byOrigin.set(origin, n)
  }

  inFlightTo (origin: string): number { return this.byOrigin.get(origin) ?? 0 }
}

class CountedExchange extends HandlerDecorator {
  private ended = false

  constructor (inner: Handler, private readonly exchanges: Exchanges, private readonly origin: string) {
    super(inner)
    exchanges.begin(origin)
  }

  private end (failed: boolean): void {
    if (this.ended) return
    this.ended = true
    this.exchanges.end(this.origin, failed)
  }

  override onRequestUpgrade (controller: Controller, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.end(false)
    super.onRequestUpgrade(controller, statusCode, headers, socket)
  }

  override onResponseEnd (controller: Controller, trailers: IncomingHttpHeaders): void {
    this.end(false)
    super.onResponseEnd(controller, trailers)
  }

  override onResponseError (controller: Controller, err: Error): void {
    this.end(true)
    super.onResponseError(controller, err)
  }
}

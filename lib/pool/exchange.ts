import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { errors, type Dispatcher } from 'undici'
import type { Controller, Dispatch, Handler, Interceptor } from '../handler/decorator.js'
import { systemClock, type Clock, type Timer } from '../time/clock.js'
import { ClientAbortError, queueFull, queueTimeout } from './errors.js'

export interface ExchangeCounters { requests: number, errors: number, queueTimeouts: number, queueFull: number }

export const exchangeCounters = (): ExchangeCounters => ({ requests: 0, errors: 0, queueTimeouts: 0, queueFull: 0 })

/** Told how each exchange that was sent ended on the wire, per origin (the metrics' per-origin counts). */
export interface ExchangeObserver {
  /** The final response's status (101 for an upgrade) came `ms` after the request was sent. */
  responded: (origin: string, status: number, ms: number) => void
  /** The exchange failed without a response, and not by its caller's doing. */
  failed: (origin: string, err: Error) => void
}

/** How many exchanges a pool sends at once, and how long one may wait. */
export interface Capacity {
  /** Exchanges at once per origin: max-per-route connections, one exchange each (HTTP/1.1). */
  perOrigin: number
  /** Exchanges at once across origins: max-total connections. */
  total: number
  /** `x:queue.timeout`: ms a request may wait for room; 0 = no limit. */
  queueTimeout: number
  /** `x:queue.max-pending`: requests that may wait at once; one more is refused at once. 0 = no bound. */
  maxPending: number
  /** `http.socket.timeout`: ms from the request's start to its final response headers, 1xx or not; 0 = none. */
  socketTimeout: number
}

/**
 * A pool's exchanges. Each one is cancellable from the moment it is
 * dispatched: requests that find no room wait in the pool's own queue, and
 * undici is only handed a request it can send at once. The queue is fair
 * across origins: room that frees goes to the origins in turn, the one that
 * has waited longest for its turn first, oldest request first within an
 * origin; so no origin waits behind another origin's backlog. A request given up while it waits (queue timeout, caller gone) leaves
 * the queue there and then, is never sent and holds nothing; undici's queue
 * can only drop a request by destroying the connection it is handed.
 * Exchanges in flight are counted per origin; this is the innermost layer
 * of every pool, so each one that reaches the sockets is counted once.
 */
export class Exchanges {
  inFlight = 0
  private readonly byOrigin = new Map<string, number>()
  /** Waiting requests per origin; the map's order is the origins' turns. */
  private readonly queues = new Map<string, PoolExchange[]>()
  private queued = 0
  private pumpScheduled = false
  private drained: (() => void) | undefined

  /** `counters` may be shared with the pool's earlier dispatchers: a reload keeps them growing. */
  constructor (readonly capacity: Capacity, readonly clock: Clock = systemClock,
    readonly counters: ExchangeCounters = exchangeCounters(), readonly observer?: ExchangeObserver) {}

  readonly interceptor: Interceptor = (dispatch) => (opts, handler) => {
    new PoolExchange(this, dispatch, opts, handler).start()
    return true
  }

  /** Requests waiting for room. */
  get waiting (): number { return this.queued }

  private hasRoom (origin: string): boolean {
    return this.inFlight < this.capacity.total && (this.byOrigin.get(origin) ?? 0) < this.capacity.perOrigin
  }

  /**
   * Sends `ex` now if nothing waits before it and there is room, else queues it;
   * with the queue full it is refused at once (a bulkhead: one slow origin
   * cannot make the whole gateway wait).
   */
  admit (ex: PoolExchange): void {
    if (this.queued === 0 && this.hasRoom(ex.origin)) {
      ex.send()
      return
    }
    const { maxPending } = this.capacity
    if (maxPending > 0 && this.queued >= maxPending) {
      this.counters.queueFull++
      ex.abort(queueFull(maxPending))
      return
    }
    const queue = this.queues.get(ex.origin)
    if (queue === undefined) this.queues.set(ex.origin, [ex])
    else queue.push(ex)
    this.queued++
    const wait = this.capacity.queueTimeout
    if (wait > 0) ex.timer = this.clock.setTimeout(() => { this.timedOut(ex, wait) }, wait)
  }

  private timedOut (ex: PoolExchange, wait: number): void {
    this.counters.queueTimeouts++
    ex.abort(queueTimeout(wait))
  }

  /** `ex` was given up while it waited. */
  leave (ex: PoolExchange): void {
    const queue = this.queues.get(ex.origin)
    const i = queue?.indexOf(ex) ?? -1
    if (i !== -1) {
      queue!.splice(i, 1)
      this.queued--
      if (queue!.length === 0) this.queues.delete(ex.origin)
    }
    this.clock.clearTimeout(ex.timer)
    if (this.queued === 0) this.drained?.()
  }

  begin (origin: string): void {
    this.counters.requests++
    this.inFlight++
    this.byOrigin.set(origin, (this.byOrigin.get(origin) ?? 0) + 1)
  }

  /** `failure`: why it failed without a response, when the upstream (not its caller) is to blame. */
  end (origin: string, failure?: Error): void {
    if (failure !== undefined) {
      this.counters.errors++
      this.observer?.failed(origin, failure)
    }
    this.inFlight--
    const n = this.byOrigin.get(origin)! - 1
    if (n === 0) this.byOrigin.delete(origin)
    else this.byOrigin.set(origin, n)
    // After the current event: undici frees the connection only once this exchange's end has been handled.
    if (this.queued > 0 && !this.pumpScheduled) {
      this.pumpScheduled = true
      setImmediate(() => {
        this.pumpScheduled = false
        this.pump()
      })
    }
  }

  /**
   * Hands the room there is to the origins in turn: each origin with room sends
   * its oldest request and goes to the back of the line; an origin at its own
   * limit keeps its place.
   */
  private pump (): void {
    let sent = true
    while (sent && this.queued > 0 && this.inFlight < this.capacity.total) {
      sent = false
      for (const [origin, queue] of this.queues) {
        if (this.inFlight >= this.capacity.total) break
        if (!this.hasRoom(origin)) continue
        const ex = queue.shift()!
        this.queued--
        this.queues.delete(origin)
        if (queue.length > 0) this.queues.set(origin, queue)
        this.clock.clearTimeout(ex.timer)
        ex.send()
        sent = true
      }
    }
    if (this.queued === 0) this.drained?.()
  }

  /** Resolves once nothing waits (the pool is closing: what waits is still sent). */
  async untilDrained (): Promise<void> {
    if (this.queued === 0) return
    await new Promise<void>((resolve) => { this.drained = resolve })
  }

  /** Fails every waiting request (the pool is destroyed). */
  failWaiting (err: Error): void {
    for (const queue of [...this.queues.values()]) for (const ex of [...queue]) ex.abort(err)
  }

  inFlightTo (origin: string): number { return this.byOrigin.get(origin) ?? 0 }
}

/** undici's socket and connect timers tick every half second: below this, the pool keeps time itself. */
export const FINE_TIMEOUT_MS = 1000

const isStream = (body: unknown): body is NodeJS.ReadableStream =>
  body !== null && typeof body === 'object' && typeof (body as { on?: unknown }).on === 'function'

/**
 * One exchange of the pool: the controller its caller holds from the start,
 * and undici's handler once it is sent.
 */
class PoolExchange implements Handler, Controller {
  readonly origin: string
  timer: Timer | undefined
  private sent = false
  private ended = false
  private isPaused = false
  private abortReason: Error | null = null
  private upload: Error | undefined
  private socket: Controller | undefined
  private startedAt = 0
  private sentAt = 0
  private socketTimer: Timer | undefined

  constructor (private readonly exchanges: Exchanges, private readonly dispatch: Dispatch,
    private readonly opts: Dispatcher.DispatchOptions, private readonly inner: Handler) {
    this.origin = String(opts.origin)
    // The caller's upload failing (its client went away) is the caller's failure, not the upstream's.
    if (isStream(opts.body)) opts.body.once('error', this.onUploadError)
  }

  start (): void {
    this.inner.onRequestStart?.(this, undefined)
    if (this.abortReason === null) this.exchanges.admit(this)
  }

  send (): void {
    this.sent = true
    if (this.exchanges.observer !== undefined) this.sentAt = this.exchanges.clock.now()
    this.exchanges.begin(this.origin)
    this.dispatch(this.opts, this)
  }

  private readonly onUploadError = (err: Error): void => {
    this.upload = err
    if (!this.sent) this.abort(new ClientAbortError('the client\'s upload failed before it was sent', { cause: err }))
  }

  // The caller's controller.
  get aborted (): boolean { return this.abortReason !== null }
  get paused (): boolean { return this.isPaused }
  get reason (): Error | null { return this.abortReason }

  abort (reason: Error): void {
    if (this.abortReason !== null || this.ended) return
    this.abortReason = reason
    if (this.sent) {
      // Not yet started by undici: onRequestStart aborts it.
      this.socket?.abort(reason)
      return
    }
    this.exchanges.leave(this)
    this.end()
    this.inner.onResponseError?.(this, reason)
  }

  pause (): void {
    this.isPaused = true
    this.socket?.pause()
  }

  resume (): void {
    this.isPaused = false
    this.socket?.resume()
  }

  // undici's handler.
  onRequestStart (controller: Controller): void {
    this.socket = controller
    if (this.abortReason !== null) controller.abort(this.abortReason)
    else if (this.isPaused) controller.pause()
    const ms = this.exchanges.capacity.socketTimeout
    if (ms <= 0) return
    this.startedAt = this.exchanges.clock.now()
    if (ms < FINE_TIMEOUT_MS) this.armSocketTimer(controller, ms, 'headers')
  }

  onRequestUpgrade (_controller: Controller, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.responded(statusCode)
    this.end()
    this.inner.onRequestUpgrade?.(this, statusCode, headers, socket)
  }

  onResponseStart (controller: Controller, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    const ms = this.exchanges.capacity.socketTimeout
    if (statusCode < 200) {
      // undici restarts its headers timeout on every informational response, so an upstream
      // that sends 103s forever would hold the connection for good: the first one arms a
      // timer for what is left of http.socket.timeout (the pool's own one already runs).
      if (ms >= FINE_TIMEOUT_MS && this.socketTimer === undefined) this.armSocketTimer(controller, this.startedAt + ms - this.exchanges.clock.now(), 'headers')
    } else {
      this.responded(statusCode)
      this.exchanges.clock.clearTimeout(this.socketTimer)
      this.socketTimer = undefined
      if (ms > 0 && ms < FINE_TIMEOUT_MS) this.armSocketTimer(controller, ms, 'body')
    }
    this.inner.onResponseStart?.(this, statusCode, headers, statusMessage)
  }

  /**
   * The pool's own socket timer: for what undici's timers cannot do (they tick
   * every half second, so a timeout under a second fired up to a second late;
   * and informational responses restart them). `body` bounds the inactivity
   * between chunks; `headers` the wait for the final response.
   */
  private armSocketTimer (controller: Controller, ms: number, phase: 'headers' | 'body'): void {
    const { clock, capacity } = this.exchanges
    clock.clearTimeout(this.socketTimer)
    this.socketTimer = clock.setTimeout(() => {
      const limit = capacity.socketTimeout
      controller.abort(phase === 'headers'
        ? new errors.HeadersTimeoutError(`no final response within http.socket.timeout (${limit} ms)`)
        : new errors.BodyTimeoutError(`no response body data within http.socket.timeout (${limit} ms)`))
    }, Math.max(0, ms))
  }

  onResponseData (controller: Controller, chunk: Buffer): void {
    const ms = this.exchanges.capacity.socketTimeout
    if (ms > 0 && ms < FINE_TIMEOUT_MS) this.armSocketTimer(controller, ms, 'body')
    this.inner.onResponseData?.(this, chunk)
  }

  private responded (statusCode: number): void {
    this.exchanges.observer?.responded(this.origin, statusCode, this.exchanges.clock.now() - this.sentAt)
  }

  onResponseEnd (_controller: Controller, trailers: IncomingHttpHeaders): void {
    this.end()
    this.inner.onResponseEnd?.(this, trailers)
  }

  onResponseError (_controller: Controller, err: Error): void {
    if (this.upload !== undefined && this.abortReason === null) err = new ClientAbortError('the client\'s upload failed', { cause: this.upload })
    // Cancelled by its caller, or failed by its caller's upload: not an upstream error.
    this.end(this.abortReason === null && this.upload === undefined ? err : undefined)
    this.inner.onResponseError?.(this, err)
  }

  private end (failure?: Error): void {
    if (this.ended) return
    this.ended = true
    this.exchanges.clock.clearTimeout(this.socketTimer)
    if (isStream(this.opts.body)) this.opts.body.removeListener('error', this.onUploadError)
    if (this.sent) this.exchanges.end(this.origin, failure)
  }
}

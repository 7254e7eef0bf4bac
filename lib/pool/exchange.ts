import type { Dispatcher } from 'undici'
import { ResponseLimitError } from './errors.js'
import { asLegacyHandler, type Handler } from './handler.js'

// "HTTP/1.1 200 " before the reason phrase.
const STATUS_PREFIX = 13

export interface ExchangeCounters { requests: number, errors: number }

/** A pool's exchanges: counted, and those in flight tracked per origin (cheaper than asking undici's pools). */
export class Exchanges {
  readonly counters: ExchangeCounters = { requests: 0, errors: 0 }
  inFlight = 0
  private readonly byOrigin = new Map<string, number>()

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

/**
 * Wraps every exchange of a pool: counts it, and enforces
 * `http.connection.max-header-count` and `max-line-length`, which undici lacks.
 * A breaking response is aborted (its socket destroyed) before the caller sees any of it.
 */
export class ExchangeHandler implements Handler {
  private abort: ((err: Error) => void) | undefined
  private readonly inner: Handler
  private ended = false

  constructor (inner: Dispatcher.DispatchHandler, private readonly maxCount: number, private readonly maxLine: number,
    private readonly exchanges: Exchanges, private readonly origin: string) {
    this.inner = asLegacyHandler(inner)
    exchanges.begin(origin)
  }

  private end (failed: boolean): void {
    if (this.ended) return
    this.ended = true
    this.exchanges.end(this.origin, failed)
  }

  onConnect (abort: (err?: Error) => void, context?: object): void {
    this.abort = abort
    this.inner.onConnect?.(abort, context)
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    const err = this.check(rawHeaders, statusText)
    if (err) {
      this.abort!(err)
      return false
    }
    return this.inner.onHeaders!(statusCode, rawHeaders, resume, statusText)
  }

  private check (raw: Buffer[], statusText: string): ResponseLimitError | undefined {
    const count = raw.length / 2
    if (this.maxCount > 0 && count > this.maxCount) {
      return new ResponseLimitError(`response has ${count} header fields, more than http.connection.max-header-count (${this.maxCount})`, 'http.connection.max-header-count')
    }
    if (this.maxLine > 0) {
      if (STATUS_PREFIX + statusText.length > this.maxLine) {
        return new ResponseLimitError(`response status line is longer than http.connection.max-line-length (${this.maxLine})`, 'http.connection.max-line-length')
      }
      for (let i = 0; i < raw.length; i += 2) {
        // A header line is `name: value`.
        if (raw[i]!.length + 2 + raw[i + 1]!.length > this.maxLine) {
          return new ResponseLimitError(`response header ${raw[i]!.toString('latin1')} is longer than http.connection.max-line-length (${this.maxLine})`, 'http.connection.max-line-length')
        }
      }
    }
    return undefined
  }

  onData (chunk: Buffer): boolean { return this.inner.onData!(chunk) }
  onComplete (trailers: string[] | null): void {
    this.end(false)
    this.inner.onComplete!(trailers)
  }

  onError (err: Error): void {
    this.end(true)
    this.inner.onError!(err)
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void {
    this.end(false)
    this.inner.onUpgrade?.(statusCode, headers, socket)
  }

  onResponseStarted (): void {
    (this.inner as { onResponseStarted?: () => void }).onResponseStarted?.()
  }
}

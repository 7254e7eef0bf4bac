import type { Dispatcher } from 'undici'
import { ResponseLimitError } from './errors.js'
import { asLegacyHandler, type Handler } from './handler.js'

// "HTTP/1.1 200 " before the reason phrase.
const STATUS_PREFIX = 13

export interface ExchangeCounters { requests: number, errors: number }

/**
 * Wraps every exchange of a pool: counts it, and enforces
 * `http.connection.max-header-count` and `max-line-length`, which undici lacks.
 * A breaking response is aborted (its socket destroyed) before the caller sees any of it.
 */
export class ExchangeHandler implements Handler {
  private abort: ((err: Error) => void) | undefined
  private readonly inner: Handler

  constructor (inner: Dispatcher.DispatchHandler, private readonly maxCount: number, private readonly maxLine: number, private readonly counters: ExchangeCounters) {
    this.inner = asLegacyHandler(inner)
    counters.requests++
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
  onComplete (trailers: string[] | null): void { this.inner.onComplete!(trailers) }
  onError (err: Error): void {
    this.counters.errors++
    this.inner.onError!(err)
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void {
    this.inner.onUpgrade?.(statusCode, headers, socket)
  }

  onResponseStarted (): void {
    (this.inner as { onResponseStarted?: () => void }).onResponseStarted?.()
  }
}

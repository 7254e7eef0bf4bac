import type { IncomingHttpHeaders } from 'node:http'
import { HandlerDecorator, type Controller, type Handler, type Interceptor } from '../handler/decorator.js'
import { BadResponseError, ResponseLimitError } from './errors.js'

// "HTTP/1.1 200 " before the reason phrase.
const STATUS_PREFIX = 13

/**
 * What undici does not check of a response: a status outside 100-599, and
 * `http.connection.max-header-count` and `max-line-length` (0 turns a limit
 * off). A response that fails one is aborted (its connection closed) before
 * the layers above see any of it.
 */
export function responseChecks (maxCount: number, maxLine: number): Interceptor {
  return (dispatch) => (opts, handler) => dispatch(opts, new CheckedResponse(handler, maxCount, maxLine))
}

class CheckedResponse extends HandlerDecorator {
  constructor (inner: Handler, private readonly maxCount: number, private readonly maxLine: number) {
    super(inner)
  }

  override onResponseStart (controller: Controller, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    const err = statusCode < 100 || statusCode > 599
      ? new BadResponseError(`response status ${statusCode} is outside 100-599`)
      : this.check(headers, statusMessage ?? '')
    if (err !== undefined) {
      controller.abort(err)
      return
    }
    super.onResponseStart(controller, statusCode, headers, statusMessage)
  }

  private check (headers: IncomingHttpHeaders, statusMessage: string): Error | undefined {
    const { maxCount, maxLine } = this
    // undici joins repeated fields into an array, and decodes values as latin1: one character per byte.
    let count = 0
    let longLine: string | undefined
    for (const name in headers) {
      const value = headers[name]!
      if (typeof value === 'string') {
        count++
        // A header line is `name: value`.
        if (maxLine > 0 && name.length + 2 + value.length > maxLine) longLine ??= name
        continue
      }
      count += value.length
      for (const v of value) if (maxLine > 0 && name.length + 2 + v.length > maxLine) longLine ??= name
    }
    if (maxCount > 0 && count > maxCount) {
      return new ResponseLimitError(`response has ${count} header fields, more than http.connection.max-header-count (${maxCount})`, 'http.connection.max-header-count')
    }
    if (maxLine > 0 && STATUS_PREFIX + statusMessage.length > maxLine) {
      return new ResponseLimitError(`response status line is longer than http.connection.max-line-length (${maxLine})`, 'http.connection.max-line-length')
    }
    if (longLine !== undefined) {
      return new ResponseLimitError(`response header ${longLine} is longer than http.connection.max-line-length (${maxLine})`, 'http.connection.max-line-length')
    }
    return undefined
  }
}

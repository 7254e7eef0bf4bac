import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Controller, Handler } from '../handler/decorator.js'
import { ClientAbortError, isClientAbort } from '../pool/errors.js'
import { dropResponseHopByHop } from './headers.js'

/** The response reply-from reads: status, headers and the body as a stream. */
export interface ForwardedResponse { statusCode: number, headers: IncomingHttpHeaders, body: Readable }

export type ForwardCallback = (err: Error | null, res?: ForwardedResponse) => void

/**
 * The body of a forwarded response: a stream whose reader's pace is the
 * upstream's (a full buffer pauses the exchange), and whose destruction, by a
 * client that went away mid-stream, aborts the exchange.
 */
class ResponseBody extends Readable {
  ended = false
  constructor (private readonly controller: Controller, private readonly exchange: ForwardExchange) { super() }

  override _read (): void { this.controller.resume() }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.ended) this.exchange.clientGone()
    callback(err)
  }
}

/**
 * One forwarded exchange as reply-from's `request(opts, callback)` sees it,
 * on undici's controller-based handler API. The response is handed over with
 * its first body byte (or its end): a failure before then still reaches
 * reply-from's error path, so the client gets the status that says what
 * failed instead of a broken stream. The client's leaving cancels the
 * exchange wherever it is (queued, connecting, waiting, streaming).
 */
export class ForwardExchange implements Handler {
  private controller: Controller | undefined
  private statusCode = 0
  private headers: IncomingHttpHeaders = {}
  private body: ResponseBody | undefined
  private handedOver = false
  private done = false

  constructor (private readonly callback: ForwardCallback, private readonly onClientGone: () => void = () => {}) {}

  /**
   * The gateway's client went away before the exchange ended: it is cancelled
   * as the client's failure, and reply-from is not called back (it would log
   * the client's leaving as an upstream warning).
   */
  clientGone (): void {
    if (this.done) return
    this.done = true
    this.handedOver = true
    this.onClientGone()
    this.controller?.abort(new ClientAbortError('the client closed the connection before the response was complete'))
  }

  onRequestStart (controller: Controller): void {
    this.controller = controller
  }

  onResponseStart (controller: Controller, statusCode: number, headers: IncomingHttpHeaders): void {
    // Informational responses are the gateway's to absorb: reply-from answers with one response.
    if (statusCode < 200) return
    this.statusCode = statusCode
    this.headers = dropResponseHopByHop(headers)
    this.body = new ResponseBody(controller, this)
  }

  onResponseData (controller: Controller, chunk: Buffer): void {
    const body = this.body!
    this.handOver()
    if (!body.push(chunk)) controller.pause()
  }

  onResponseEnd (): void {
    const body = this.body!
    this.done = true
    body.ended = true
    this.handOver()
    body.push(null)
  }

  onResponseError (_controller: Controller, err: Error): void {
    const handedOver = this.handedOver
    const leftFirst = this.done
    this.done = true
    this.handedOver = true
    // An upload that failed: the client left; as for clientGone, reply-from is not told.
    if (!leftFirst && isClientAbort(err)) this.onClientGone()
    else if (!handedOver) this.callback(err)
    else if (this.body !== undefined && !this.body.destroyed) {
      this.body.ended = true
      this.body.destroy(err)
    }
  }

  /** `res` is the gateway's response to its client: its closing before it finished means the client left. */
  watch (res: ServerResponse): void {
    res.once('close', () => { if (!res.writableFinished) this.clientGone() })
  }

  private handOver (): void {
    if (this.handedOver) return
    this.handedOver = true
    this.callback(null, { statusCode: this.statusCode, headers: this.headers, body: this.body! })
  }
}

/** Starts `opts` on `dispatcher` as a ForwardExchange. */
export function forward (dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, callback: ForwardCallback, onClientGone?: () => void): ForwardExchange {
  const exchange = new ForwardExchange(callback, onClientGone)
  dispatcher.dispatch(opts, exchange)
  return exchange
}

/** `forward` as a promise, for callers that buffer the response (the forwarded-route cache). */
export async function forwarded (dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions): Promise<ForwardedResponse> {
  return await new Promise((resolve, reject) => {
    forward(dispatcher, opts, (err, res) => { if (err !== null) reject(err); else resolve(res!) })
  })
}

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Socket } from 'node:net'
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
export class ResponseBody extends Readable {
  ended = false
  constructor (private readonly controller: Controller, private readonly exchange: ForwardExchange) {
    super()
    // Its failure reaches whoever reads it; a body nobody reads (an onSend
    // hook replaced it) must not take the process down when the upstream fails.
    this.on('error', () => {})
  }

  override _read (): void { this.controller.resume() }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.ended) this.exchange.clientGone()
    callback(err)
  }
}

// The exchanges in flight on a client's HTTP/1 connection (several when it pipelines).
const kInFlight = Symbol('fastify-http-pools.in-flight')
type ClientSocket = Socket & { [kInFlight]?: Set<ForwardExchange> }

/** The gateway's client an exchange answers: its request and response, and what is told when it leaves. */
export interface Client {
  req: IncomingMessage | Http2ServerRequest
  res: ServerResponse | Http2ServerResponse
  onGone: () => void
}

const clientLeft = (): ClientAbortError => new ClientAbortError('the client closed the connection before the response was complete')

/**
 * One forwarded exchange on undici's controller-based handler API, from the
 * gateway client's side: the client's leaving cancels it wherever it is
 * (queued, connecting, waiting, streaming), and a failure before the response
 * is handed over still gets the status that says what failed instead of a
 * broken stream. Subclasses say when and how the response is handed over.
 */
export abstract class ForwardExchange implements Handler {
  protected controller: Controller | undefined
  protected statusCode = 0
  protected headers: IncomingHttpHeaders = {}
  protected body: ResponseBody | undefined
  protected handedOver = false
  protected done = false
  private client: Client | undefined
  private inFlight: Set<ForwardExchange> | undefined

  /**
   * Starts the exchange on `dispatcher`; with `client`, cancelled when that
   * client leaves. On HTTP/1 its connection is watched, by one listener
   * however many exchanges the connection carries (pipelined ones too); on
   * HTTP/2 (and under `inject`, whose socket is a stand-in) its response. A
   * client that left already, while an async hook ran, has no close to come:
   * it is gone at once, and its request is never sent.
   */
  start (dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, client?: Client): void {
    this.client = client
    if (client === undefined) {
      dispatcher.dispatch(opts, this)
      return
    }
    const { req, res } = client
    const h2 = req.httpVersionMajor === 2
    if (h2 ? (res as Http2ServerResponse).stream.destroyed : req.socket.destroyed) this.clientGone()
    dispatcher.dispatch(opts, this)
    if (this.done) return
    if (!h2 && req.socket instanceof Socket) this.watchConnection(req.socket)
    // Not by writableFinished: a stream the client reset reads as finished.
    else res.once('close', () => { this.closed() })
  }

  /**
   * The client's connection or response closed while the exchange ran. A
   * response the gateway had ended went without the rest of this body (an
   * onSend hook replaced it): the exchange is not wanted, and its client did
   * not leave.
   */
  private closed (): void {
    if (this.client!.res.writableEnded) this.cancel(new ClientAbortError('the response to the client ended without the rest of the upstream body'))
    else this.clientGone()
  }

  /**
   * The gateway's client went away before the exchange ended: it is cancelled
   * as the client's failure, and no failure is reported (it would be logged as
   * an upstream warning).
   */
  clientGone (): void {
    if (this.done) return
    this.client?.onGone()
    this.cancel(clientLeft())
  }

  /** Ends the exchange, and the upstream's side of it as the client's doing (never retried, never an upstream error). */
  private cancel (reason: ClientAbortError): void {
    if (this.done) return
    this.end()
    this.handedOver = true
    this.controller?.abort(reason)
  }

  onRequestStart (controller: Controller): void {
    this.controller = controller
    // Gone before the exchange started: it is never sent.
    if (this.done) controller.abort(clientLeft())
  }

  onResponseStart (controller: Controller, statusCode: number, headers: IncomingHttpHeaders): void {
    // Informational responses are the gateway's to absorb: its client gets one response.
    if (statusCode < 200) return
    this.statusCode = statusCode
    // As undici gave them: each hand-over drops the hop-by-hop ones its own way.
    this.headers = headers
    this.started(controller)
  }

  abstract onResponseData (controller: Controller, chunk: Buffer): void

  abstract onResponseEnd (): void

  onResponseError (_controller: Controller, err: Error): void {
    const handedOver = this.handedOver
    const leftFirst = this.done
    this.end()
    this.handedOver = true
    // An upload that failed: the client left; as for clientGone, nothing is reported.
    if (!leftFirst && isClientAbort(err)) this.client?.onGone()
    else if (!handedOver) this.failed(err)
    else if (this.body !== undefined && !this.body.destroyed) {
      this.body.ended = true
      this.body.destroy(err)
    }
  }

  /** The connection closing while the exchange runs means the client left. */
  private watchConnection (socket: Socket): void {
    const client = socket as ClientSocket
    let inFlight = client[kInFlight]
    if (inFlight === undefined) {
      const exchanges = inFlight = client[kInFlight] = new Set()
      socket.once('close', () => { for (const exchange of exchanges) exchange.closed() })
    }
    inFlight.add(this)
    this.inFlight = inFlight
  }

  /** The exchange is over for its client: nothing more to watch. */
  protected end (): void {
    this.done = true
    this.inFlight?.delete(this)
  }

  /** The final response's status and headers are in: the body is about to come. */
  protected abstract started (controller: Controller): void

  /** The exchange failed before its response was handed over. */
  protected abstract failed (err: Error): void

  /** Streams the body from the first chunk on, pausing the upstream while the client's side is full. */
  protected streamData (controller: Controller, chunk: Buffer): void {
    const body = this.body!
    this.handOver()
    if (!body.push(chunk)) controller.pause()
  }

  protected streamEnd (): void {
    const body = this.body!
    this.end()
    body.ended = true
    this.handOver()
    body.push(null)
  }

  protected abstract handOver (): void
}

/**
 * The exchange as reply-from's `request(opts, callback)` sees it: the response
 * is handed over with its first body byte (or its end).
 */
export class ReplyFromExchange extends ForwardExchange {
  constructor (private readonly callback: ForwardCallback) { super() }

  protected started (controller: Controller): void {
    this.body = new ResponseBody(controller, this)
  }

  onResponseData (controller: Controller, chunk: Buffer): void { this.streamData(controller, chunk) }

  onResponseEnd (): void { this.streamEnd() }

  protected failed (err: Error): void { this.callback(err) }

  protected handOver (): void {
    if (this.handedOver) return
    this.handedOver = true
    this.callback(null, { statusCode: this.statusCode, headers: dropResponseHopByHop(this.headers), body: this.body! })
  }
}

/** Starts `opts` on `dispatcher` as reply-from's exchange, for `client` when one waits for it. */
export function forward (dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, callback: ForwardCallback, client?: Client): void {
  new ReplyFromExchange(callback).start(dispatcher, opts, client)
}

/** `forward` as a promise, for callers that buffer the response (the forwarded-route cache). */
export async function forwarded (dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions): Promise<ForwardedResponse> {
  return await new Promise((resolve, reject) => {
    forward(dispatcher, opts, (err, res) => { if (err !== null) reject(err); else resolve(res!) })
  })
}

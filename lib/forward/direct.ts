import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { Readable, Stream } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Controller } from '../handler/decorator.js'
import { ForwardExchange, ResponseBody, type Client } from './exchange.js'
import { markOrigin } from './errors.js'
import { dropFraming, dropResponseHopByHop, forwardableRequestHeaders, setResponseHeaders } from './headers.js'
import type { TargetUrls } from './target.js'

type RewriteHeaders = (headers: IncomingHttpHeaders, request: FastifyRequest) => IncomingHttpHeaders
type RewriteRequestHeaders = (request: FastifyRequest, headers: Record<string, unknown>) => Record<string, unknown>
type OnError = (reply: FastifyReply, error: { error: Error }) => void

/** What a `reply.from()` call may ask of the direct path; any other option goes through reply-from. */
export interface DirectCall {
  rewriteHeaders?: RewriteHeaders
  rewriteRequestHeaders?: RewriteRequestHeaders
}

const DIRECT_OPTIONS = new Set(['rewriteHeaders', 'rewriteRequestHeaders'])

/**
 * Whether `reply.from()` can skip reply-from: only the options above, a
 * request with no body or a body left as a stream (reply-from re-encodes
 * parsed ones), and an HTTP/1 client (HTTP/2 pseudo-headers need reply-from's
 * filtering).
 */
export function isDirect (request: FastifyRequest, callOpts: Record<string, unknown>): boolean {
  for (const key in callOpts) {
    if (callOpts[key] !== undefined && !DIRECT_OPTIONS.has(key)) return false
  }
  const body = request.body
  return (body === undefined || body instanceof Stream) && request.raw.httpVersionMajor !== 2
}

export interface DirectDeps {
  urls: TargetUrls
  /** Reports a failure before the response was handed over (the plugin's 502/503/504 mapping). */
  onError: OnError
  /** reply-from's `disableRequestLogging`: its two info lines per request are kept unless it was set. */
  logRequests: boolean
}

/**
 * Forwards the client's request as reply-from would (same URL, same header
 * handling) and answers the reply from the upstream response itself, through
 * `reply.send`, so the route's onSend and onResponse hooks run.
 */
export function forwardDirect (reply: FastifyReply, source: string | undefined, call: DirectCall, dispatcher: Dispatcher, deps: DirectDeps, client: Client): void {
  const request = reply.request
  const req = request.raw
  const reqUrl = req.url!
  const query = reqUrl.indexOf('?')
  const url = deps.urls.get(source ?? (query >= 0 ? reqUrl.slice(0, query) : reqUrl))
  let headers = forwardableRequestHeaders(req.headers)
  headers.host = url.host
  // What the caller's rewrite put back of the framing goes again: undici frames the request itself.
  if (call.rewriteRequestHeaders !== undefined) headers = dropFraming(call.rewriteRequestHeaders(request, headers))
  if (deps.logRequests) request.log.info({ source }, 'fetching from remote server')
  const exchange = new ReplyExchange(reply, url.origin, call.rewriteHeaders, deps)
  exchange.start(dispatcher, {
    origin: url.origin,
    path: url.pathname + (url.search.length > 0 ? url.search : query > 0 ? reqUrl.slice(query) : ''),
    method: req.method as Dispatcher.HttpMethod,
    headers: headers as IncomingHttpHeaders,
    body: request.body as Readable | undefined
  }, client)
  // Once the exchange is under way: if starting it threw, the reply keeps Fastify's own.
  ;(reply as { then: FastifyReply['then'] }).then = exchange.then
}

/**
 * An exchange that answers a Fastify reply. A body that arrives whole in one
 * read (the declared length in the first chunk: most API responses) goes to
 * `reply.send` as that buffer, and Fastify writes headers and body in one
 * write; any other streams from its first byte, with backpressure, so a body
 * that trickles or stalls reaches the client as it comes.
 */
class ReplyExchange extends ForwardExchange {
  private expected = -1
  private whole: Buffer | undefined
  private settled = false
  // Fastify's, from the reply's prototype (the reply gets this exchange's as its own).
  private readonly fastifyThen: FastifyReply['then']
  private waiting: Array<Parameters<FastifyReply['then']>> | undefined

  constructor (private readonly reply: FastifyReply, private readonly origin: string, private readonly rewriteHeaders: RewriteHeaders | undefined, private readonly deps: DirectDeps) {
    super()
    this.fastifyThen = reply.then
  }

  protected started (): void {
    const length = this.headers['content-length']
    if (length !== undefined) this.expected = Number(length)
  }

  onResponseData (controller: Controller, chunk: Buffer): void {
    if (this.body === undefined) {
      if (chunk.length === this.expected) {
        this.whole = chunk
        return
      }
      this.body = new ResponseBody(controller, this)
    }
    this.streamData(controller, chunk)
  }

  onResponseEnd (): void {
    if (this.body !== undefined) return this.streamEnd()
    this.end()
    this.handOver()
  }

  /**
   * The reply's `then`, for a handler that returns the reply (or a promise of
   * it): Fastify's attaches a stream watcher to the response at once, about
   * 7 % of a small forwarded request's CPU (a benchmark pair). Asked before
   * the exchange has answered, this one waits for that and then asks
   * Fastify's: a reply sent whole is done at once; a streamed one, an error
   * or a client gone end as Fastify's own `then` says.
   */
  readonly then: FastifyReply['then'] = (fulfilled, rejected) => {
    if (this.settled) return this.fastifyThen.call(this.reply, fulfilled, rejected)
    ;(this.waiting ??= []).push([fulfilled, rejected])
  }

  private settle (): void {
    if (this.settled) return
    this.settled = true
    const waiting = this.waiting
    this.waiting = undefined
    if (waiting !== undefined) for (const [fulfilled, rejected] of waiting) this.fastifyThen.call(this.reply, fulfilled, rejected)
  }

  // Every end that is not a hand-over comes here, a client gone too (leaving aborts the exchange).
  override onResponseError (controller: Controller, err: Error): void {
    super.onResponseError(controller, err)
    this.settle()
  }

  protected failed (err: Error): void {
    markOrigin(err, this.origin)
    if (!this.reply.sent) this.deps.onError(this.reply, { error: err })
  }

  protected handOver (): void {
    if (this.handedOver) return
    this.handedOver = true
    const reply = this.reply
    const request = reply.request
    if (this.deps.logRequests) request.log.info('response received')
    const rewrite = this.rewriteHeaders
    const headers = rewrite === undefined ? this.headers : rewrite(dropResponseHopByHop(this.headers), request)
    setResponseHeaders(reply, headers, rewrite === undefined)
    // An HTTP/1 connection is reusable only once its request body was read.
    if (!request.raw.complete) reply.header('connection', 'close')
    reply.code(this.statusCode).send(this.payload(headers))
    this.settle()
  }

  /**
   * The body as Fastify gets it. A buffer it would label
   * application/octet-stream when no content-type came: such a one goes as a
   * stream, labelled as the upstream labelled it (not at all).
   */
  private payload (headers: IncomingHttpHeaders): Buffer | Readable | undefined {
    const whole = this.whole
    if (whole === undefined) return this.body
    return headers['content-type'] === undefined ? Readable.from([whole]) : whole
  }
}

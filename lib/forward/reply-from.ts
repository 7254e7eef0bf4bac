import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import type { CachedResponse, ResponseCache } from '../cache/cache.js'
import type { PoolSettings } from '../config/schema.js'
import { buffer, materialize } from '../cache/response.js'
import { dropHopByHop } from './headers.js'
import { BadTargetError, detailOf, isBadTarget, markOrigin, failedOrigin, toUpstreamError } from './errors.js'
import { forwardDirect, isDirect, type DirectCall, type DirectDeps } from './direct.js'
import { forward, forwarded, type Client, type ForwardedResponse } from './exchange.js'
import { TargetUrls } from './target.js'
import { unixSocket } from '../pool/origins.js'
import { routeMeta } from './routes.js'

export interface ForwardTarget {
  settings: PoolSettings
  dispatcher: Dispatcher
  forwardCache: ResponseCache
  /** Where forwarded requests whose client went away before the response was complete are counted. */
  tally: { clientAborts: number }
}

export interface ForwardOptions {
  origin?: string
  replyFrom?: Record<string, unknown>
  targetFor: (pool: string | undefined) => ForwardTarget
  defaultPool: () => string
  maxBodyBytes: number
}

/**
 * The exchange that reply-from is about to start: which pool, for which reply,
 * the cache key if the route coalesces, the unix socket origin when the
 * target is one (reply-from names it `null`, or by a stand-in), and the origin
 * the call's `getUpstream` chose (reply-from sends to its base whatever that
 * returns).
 */
interface Hop { target: ForwardTarget, reply?: FastifyReply, cache?: ResponseCache, key?: string, unix?: string, upstream?: string }

type FromImpl = (this: FastifyReply, source?: string, opts?: Record<string, unknown>) => FastifyReply
type RequestHeaders = Record<string, unknown>

// Options of reply-from that the plugin owns: where requests go, how they are
// retried, and how the connections end (the pools close with the app, letting
// requests in flight finish; reply-from's destroyAgent would destroy them).
const OWNED = ['base', 'undici', 'http', 'http2', 'globalAgent', 'destroyAgent', 'retryMethods', 'retriesCount', 'maxRetriesOn503', 'retryDelay']

/**
 * Decorates `reply.from` with @fastify/reply-from running over the pools.
 * reply-from takes `onError` and `rewriteRequestHeaders` per call only, so its
 * plugin function is run against a capturing instance and its `from` wrapped:
 * the wrapper picks the route's pool, maps failures to 502/503/504 and drops
 * hop-by-hop headers. A call reply-from adds nothing to (no option but the
 * header rewrites, no parsed body, no cache key) goes the direct way instead
 * (./direct.ts): same request, and the response answered through `reply.send`
 * without reply-from's stream in between. reply-from calls the `undici` object
 * synchronously inside `from`, so the chosen dispatcher is handed over in a
 * variable, with no per-request hook.
 */
export function decorateFrom (fastify: FastifyInstance, options: ForwardOptions): void {
  let next: Hop | undefined
  const router = {
    request (opts: Dispatcher.DispatchOptions, callback: (err: Error | null, data?: ForwardedResponse) => void) {
      const hop = next ?? { target: options.targetFor(undefined) }
      next = undefined
      if (hop.upstream !== undefined) opts.origin = hop.upstream
      if (hop.unix !== undefined) {
        opts.origin = hop.unix
        ;(opts.headers as RequestHeaders).host = 'localhost'
      }
      const done = withOrigin(opts, callback)
      const { target, reply } = hop
      if (hop.cache === undefined) {
        forward(target.dispatcher, opts, done, reply === undefined ? undefined : clientOf(target, reply))
        return
      }
      // A shared exchange runs for every waiter: one client leaving does not cancel it.
      const fetch = async () => {
        const res = await forwarded(target.dispatcher, opts)
        return await buffer(res as unknown as Dispatcher.ResponseData, options.maxBodyBytes, shareable(res.headers))
      }
      hop.cache.run(hop.key!, fetch, materialize).then((res) => done(null, res as unknown as ForwardedResponse), (err: Error) => done(err))
    }
  }
  const userOptions = { ...options.replyFrom }
  for (const key of OWNED) delete userOptions[key]
  // A unix socket base would make reply-from send everything through a pool of
  // its own (no limits, no pool headers, TLS unverified): reply-from gets a
  // stand-in, and the route's pool the real origin.
  const unixBase = options.origin?.startsWith('unix+') === true ? originOf(options.origin) : undefined
  const base = unixBase === undefined ? options.origin : unixSocket(unixBase)!.url
  let impl: FromImpl | undefined
  const capture = {
    decorateReply: (name: string, fn: FromImpl) => { if (name === 'from') impl = fn },
    addHook: fastify.addHook.bind(fastify),
    onClose: (fn: (instance: FastifyInstance, done: () => void) => void) => fastify.addHook('onClose', fn),
    hasPlugin: fastify.hasPlugin.bind(fastify),
    log: fastify.log
  }
  const init = replyFrom as unknown as (instance: object, opts: object, done: (err?: Error) => void) => void
  init(capture, { ...userOptions, base, undici: router, retryMethods: [] }, (err) => { if (err) throw err })
  const from = impl!

  const onUpstreamError = sendUpstreamError(options.defaultPool)
  const direct: DirectDeps = {
    urls: new TargetUrls(base),
    onError: onUpstreamError,
    logRequests: userOptions.disableRequestLogging !== true
  }
  const dropOnly = (_req: unknown, headers: RequestHeaders): RequestHeaders => dropHopByHop(headers)

  fastify.decorateReply('from', function (this: FastifyReply, source?: string, callOpts: Record<string, unknown> = {}) {
    const request = this.request
    const meta = routeMeta(request)
    const target = options.targetFor(meta?.pool)
    let cacheKey: string | undefined
    if (meta?.cacheKey !== undefined && (request.method === 'GET' || request.method === 'HEAD') && target.settings['cache.ttl'] > 0) {
      const key = meta.cacheKey(request)
      // Kept apart by route declaration (one path may have several, by host
      // or version), method and URL (a pattern's /items/1 from /items/2) as
      // well as by the caller's key.
      if (key !== undefined) cacheKey = `${meta.declaration} ${request.method} ${request.url} ${key}`
    }
    if (cacheKey !== undefined && callOpts.onResponse === undefined) {
      const hit = target.forwardCache.peek(cacheKey)
      if (hit !== undefined) return sendCached(this, hit, callOpts.rewriteHeaders as RewriteHeaders | undefined)
    }
    if (cacheKey === undefined && unixBase === undefined && source?.startsWith('unix+') !== true && isDirect(request, callOpts)) {
      try {
        forwardDirect(this, source, callOpts as DirectCall, target.dispatcher, direct, clientOf(target, this))
      } catch (err) {
        throw isBadTarget(err, request.url) ? new BadTargetError(err) : err
      }
      return this
    }
    const rewrite = callOpts.rewriteRequestHeaders as ((req: unknown, h: RequestHeaders) => RequestHeaders) | undefined
    // reply-from's own retries stay off (undefined, not delete: a deleted key slows the object down).
    const opts: Record<string, unknown> = {
      ...callOpts,
      rewriteRequestHeaders: rewrite ? (req: unknown, headers: RequestHeaders) => rewrite(req, dropHopByHop(headers)) : dropOnly,
      onError: callOpts.onError ?? onUpstreamError,
      retryDelay: undefined,
      retriesCount: undefined
    }
    next = cacheKey === undefined
      ? { target, reply: this }
      : { target, cache: target.forwardCache, key: cacheKey }
    const getUpstream = callOpts.getUpstream as ((req: unknown, base: string | undefined) => string) | undefined
    if (getUpstream !== undefined) {
      const hop = next
      opts.getUpstream = (req: unknown, dest: string | undefined) => {
        const chosen = getUpstream(req, dest)
        if (chosen !== dest) hop.upstream = originOf(chosen)
        return chosen
      }
    }
    if (unixBase !== undefined) {
      next.unix = unixBase
      // The full URL of the origin itself, as the stand-in sees it.
      if (source !== undefined && onOrigin(source, unixBase)) source = source.slice(unixBase.length) || '/'
    } else if (source?.startsWith('unix+') === true) {
      next.unix = originOf(source)
    }
    try {
      return from.call(this, source, opts)
    } catch (err) {
      throw isBadTarget(err, request.url) ? new BadTargetError(err) : err
    } finally {
      next = undefined
    }
  })
}

/** The failure's log line names the upstream. */
export function withOrigin (opts: Dispatcher.DispatchOptions, callback: (err: Error | null, res?: ForwardedResponse) => void): (err: Error | null, res?: ForwardedResponse) => void {
  const origin = String(opts.origin)
  return (err, res) => {
    if (err !== null) markOrigin(err, origin)
    callback(err, res)
  }
}

type RewriteHeaders = (headers: IncomingHttpHeaders, request: FastifyReply['request']) => IncomingHttpHeaders

/**
 * A fresh cache hit answers at once, as reply-from would have answered with
 * the same response, without its stream machinery: the hot path of a cached route.
 */
function sendCached (reply: FastifyReply, hit: CachedResponse, rewrite: RewriteHeaders | undefined): FastifyReply {
  const headers = rewrite === undefined ? hit.headers : rewrite({ ...hit.headers }, reply.request)
  for (const name in headers) {
    if (name !== 'transfer-encoding' && name.charCodeAt(0) !== 58) reply.header(name, headers[name])
  }
  return reply.code(hit.statusCode).send(hit.body[0])
}

/** A response meant for one client only goes to the request that caused it. */
function shareable (headers: IncomingHttpHeaders): boolean {
  if (headers['set-cookie'] !== undefined) return false
  if (/(^|,)\s*\*\s*(,|$)/.test(String(headers.vary ?? ''))) return false
  return !/(^|[\s,])(private|no-store)\b/i.test(String(headers['cache-control'] ?? ''))
}

/**
 * The client of `reply`, whose leaving before its response was complete is
 * counted and said at debug level with nginx's 499.
 */
export const clientOf = (target: ForwardTarget, reply: FastifyReply): Client => ({
  req: reply.request.raw,
  res: reply.raw,
  onGone: () => {
    target.tally.clientAborts++
    reply.log.debug({ pool: target.settings.id, statusCode: 499, url: reply.request.url }, 'client closed the request before the response was complete')
  }
})

export const sendUpstreamError = (defaultPool: () => string) => (reply: FastifyReply, { error }: { error: unknown }): void => {
  const err = toUpstreamError(error)
  const pool = routeMeta(reply.request)?.pool ?? defaultPool()
  reply.log.warn({ pool, origin: failedOrigin(err), url: reply.request.url, code: err.code }, `${err.message}: ${detailOf(err)}`)
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
  reply.code(err.statusCode).send(err)
}

/** `scheme://authority` of a URL, also for a scheme the URL standard gives no origin (`unix+http:`). */
function originOf (url: string): string {
  const { protocol, host } = new URL(url)
  return `${protocol}//${host}`
}

const onOrigin = (source: string, origin: string): boolean => source.startsWith(origin) && (source.length === origin.length || source[origin.length] === '/' || source[origin.length] === '?')

import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Dispatcher } from 'undici'
import { dropHopByHop } from './headers.js'
import { toUpstreamError } from './errors.js'
import { routePool } from './routes.js'

export interface ForwardOptions {
  origin?: string
  replyFrom?: Record<string, unknown>
  dispatcherFor: (pool: string | undefined) => Dispatcher
}

type FromImpl = (this: FastifyReply, source?: string, opts?: Record<string, unknown>) => FastifyReply
type RequestHeaders = Record<string, unknown>

// Options of reply-from that the plugin owns: where requests go and how they are retried.
const OWNED = ['base', 'undici', 'http', 'http2', 'globalAgent', 'retryMethods', 'retriesCount', 'maxRetriesOn503', 'retryDelay']

/**
 * Decorates `reply.from` with @fastify/reply-from running over the pools.
 * reply-from takes `onError` and `rewriteRequestHeaders` per call only, so its
 * plugin function is run against a capturing instance and its `from` wrapped:
 * the wrapper picks the route's pool, maps failures to 502/503/504 and drops
 * hop-by-hop headers. reply-from calls the `undici` object synchronously inside
 * `from`, so the chosen dispatcher is handed over in a variable, with no
 * per-request hook.
 */
export function decorateFrom (fastify: FastifyInstance, options: ForwardOptions): void {
  let next: Dispatcher | undefined
  const router = {
    request (opts: Dispatcher.RequestOptions, callback: (err: Error | null, data: Dispatcher.ResponseData) => void) {
      const dispatcher = next ?? options.dispatcherFor(undefined)
      next = undefined
      dispatcher.request(opts, callback)
    }
  }
  const userOptions = { ...options.replyFrom }
  for (const key of OWNED) delete userOptions[key]
  let impl: FromImpl | undefined
  const capture = {
    decorateReply: (name: string, fn: FromImpl) => { if (name === 'from') impl = fn },
    addHook: fastify.addHook.bind(fastify),
    onClose: (fn: (instance: FastifyInstance, done: () => void) => void) => fastify.addHook('onClose', fn),
    hasPlugin: fastify.hasPlugin.bind(fastify),
    log: fastify.log
  }
  const init = replyFrom as unknown as (instance: object, opts: object, done: (err?: Error) => void) => void
  init(capture, { ...userOptions, base: options.origin, undici: router, retryMethods: [] }, (err) => { if (err) throw err })
  const from = impl!

  fastify.decorateReply('from', function (this: FastifyReply, source?: string, callOpts: Record<string, unknown> = {}) {
    const rewrite = callOpts.rewriteRequestHeaders as ((req: unknown, h: RequestHeaders) => RequestHeaders) | undefined
    const onError = callOpts.onError
    const opts: Record<string, unknown> = {
      ...callOpts,
      rewriteRequestHeaders: rewrite
        ? (req: unknown, headers: RequestHeaders) => rewrite(req, dropHopByHop(headers))
        : (_req: unknown, headers: RequestHeaders) => dropHopByHop(headers),
      onError: onError ?? sendUpstreamError
    }
    delete opts.retryDelay
    delete opts.retriesCount
    next = options.dispatcherFor(routePool(this.request))
    try {
      return from.call(this, source, opts)
    } finally {
      next = undefined
    }
  })
}

function sendUpstreamError (reply: FastifyReply, { error }: { error: unknown }): void {
  const err = toUpstreamError(error)
  const pool = routePool(reply.request) ?? 'default'
  reply.log.warn({ pool, url: reply.request.url, code: err.code }, err.message)
  reply.code(err.statusCode).send(err)
}

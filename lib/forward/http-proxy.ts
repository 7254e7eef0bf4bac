import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import type { FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import type { Dispatcher } from 'undici'
import { forward, type ForwardCallback } from './exchange.js'
import { dropHopByHop } from './headers.js'
import { clientOf, sendUpstreamError, withOrigin, type ForwardTarget } from './reply-from.js'

/** What `fastify.pools.httpProxyOptions(id)` returns: spread into an @fastify/http-proxy registration. */
export interface HttpProxyOptions {
  /** reply-from's `undici`: hands each request to the pool's current dispatcher, so a reload never strands the registration. */
  undici: { request: Dispatcher['request'] }
  /** reply-from's own retries stay off: the pool's retry policy is the only one. */
  retryMethods: HTTPMethods[]
  /** The plugin's 502/503/504 mapping and hop-by-hop header dropping. */
  replyOptions: Required<Pick<FastifyReplyFromHooks, 'onError' | 'rewriteRequestHeaders'>>
  /** Forwards as http-proxy's default handler does, telling the pool which client's request it carries. */
  handler: (request: FastifyRequest, reply: FastifyReply, dest: string, options: FastifyReplyFromHooks) => FastifyReply
  /** The route's pool, as the `pool` route option: reported in logs, and a reload may not remove it. */
  config: { pool: string }
}

export interface HttpProxyDeps {
  target: () => ForwardTarget
  defaultPool: () => string
}

/**
 * Options for an @fastify/http-proxy registration that forwards through pool
 * `pool`. http-proxy registers its own reply-from in its own context, so the
 * pool goes in through reply-from's `undici` option. reply-from calls it
 * synchronously inside `reply.from()`, so the handler hands the reply over in
 * a variable: the exchange is cancelled when that client leaves.
 */
export function httpProxyOptions (pool: string, deps: HttpProxyDeps): HttpProxyOptions {
  let next: FastifyReply | undefined
  const router = {
    request (opts: Dispatcher.DispatchOptions, callback: ForwardCallback): void {
      const reply = next
      next = undefined
      const target = deps.target()
      forward(target.dispatcher, opts, withOrigin(opts, callback), reply === undefined ? undefined : clientOf(target, reply))
    }
  }
  return {
    undici: router as unknown as HttpProxyOptions['undici'],
    retryMethods: [],
    replyOptions: {
      onError: sendUpstreamError(deps.defaultPool) as HttpProxyOptions['replyOptions']['onError'],
      rewriteRequestHeaders: (_request, headers) => dropHopByHop(headers as Record<string, unknown>) as typeof headers
    },
    handler (_request, reply, dest, options) {
      next = reply
      try {
        return reply.from(dest, options)
      } finally {
        next = undefined
      }
    },
    config: { pool }
  }
}

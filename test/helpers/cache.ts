// Helpers for the cache.ttl tests (test/cache): a real upstream on 127.0.0.1
// that numbers every request it receives and can hold its answers until the
// test releases them (so concurrent callers overlap by construction, not by a
// sleep), a real gateway, a client pool for it, and a bounded poll.
import Fastify, { type FastifyInstance } from 'fastify'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool, type Dispatcher } from 'undici'
import plugin, { type FastifyHttpPoolsOptions } from '../../index.js'
import { listenHttp } from './net.js'
import type { Tap } from './tap.js'
import { BOUND_MS } from './wait.js'

export type { Tap } from './tap.js'
export { BOUND_MS, eventually, within } from './wait.js'
export { EXT_NS, REPOSE_NS, poolsXml } from './xml.js'

export interface Arrival {
  /** 1-based number of this request at the upstream. */
  n: number
  method: string
  url: string
  headers: IncomingHttpHeaders
}

/** Answers request `a`; `res` is still open. */
export type Answer = (req: IncomingMessage, res: ServerResponse, a: Arrival) => void

/**
 * The default answer: status 203, `x-upstream: <n>`, `x-custom: shared`, and a
 * JSON body `{ n, method, url, pool }` (`pool` is the request's `x-pool` header).
 * `n` tells apart the responses of different upstream requests.
 */
export const numbered: Answer = (_req, res, a) => {
  res.statusCode = 203
  res.setHeader('content-type', 'application/json')
  res.setHeader('x-upstream', String(a.n))
  res.setHeader('x-custom', 'shared')
  res.end(JSON.stringify({ n: a.n, method: a.method, url: a.url, pool: a.headers['x-pool'] ?? null }))
}

export interface CacheUpstream {
  origin: string
  /** Every request that arrived, in order. */
  arrivals: Arrival[]
  /** How many requests arrived. */
  readonly count: number
  /** Resolves once `n` requests have arrived. */
  arrived: (n: number) => Promise<void>
  /** From now on, answers wait for `release()`. */
  hold: () => void
  /** Answers everything held, and answers at once from now on. */
  release: () => void
  /** Replaces the answer for requests answered from now on. */
  answer: Answer
}

/** An HTTP upstream on 127.0.0.1 (port 0), closed at teardown. Starts held when `held` is true. */
export async function cacheUpstream (t: Tap, answer: Answer = numbered, held = false): Promise<CacheUpstream> {
  const arrivals: Arrival[] = []
  const waiters: Array<{ n: number, resolve: () => void }> = []
  let pending: Array<() => void> = []
  let holding = held
  const up: CacheUpstream = {
    origin: '',
    arrivals,
    get count () { return arrivals.length },
    arrived: async (n) => {
      if (arrivals.length >= n) return
      await new Promise<void>((resolve) => waiters.push({ n, resolve }))
    },
    hold: () => { holding = true },
    release: () => {
      holding = false
      const run = pending
      pending = []
      for (const fn of run) fn()
    },
    answer
  }
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const a: Arrival = { n: arrivals.length + 1, method: req.method!, url: req.url!, headers: req.headers }
      arrivals.push(a)
      for (const w of waiters.filter((w) => arrivals.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
      const respond = (): void => { up.answer(req, res, a) }
      if (holding) pending.push(respond)
      else respond()
    })
  })
  up.origin = `http://127.0.0.1:${await listenHttp(t, server)}`
  return up
}

/** A Fastify app with the plugin registered (not listening yet); closed at teardown. */
export async function gatewayApp (t: Tap, options: FastifyHttpPoolsOptions): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(plugin, options)
  return app
}

/** Starts `app` on 127.0.0.1 (port 0); returns an undici Pool to it (closed at teardown). */
export async function listenClient (t: Tap, app: FastifyInstance, connections = 64): Promise<Pool> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Pool(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, { connections })
  t.teardown(async () => { await client.close() })
  return client
}

export interface Got {
  statusCode: number
  headers: IncomingHttpHeaders
  text: string
  json: () => any
}

/** One request through `client`, bounded, body read in full. */
export async function call (client: Dispatcher, path: string, options: { method?: Dispatcher.HttpMethod, headers?: Record<string, string> } = {}): Promise<Got> {
  const res = await client.request({ path, method: options.method ?? 'GET', headers: options.headers ?? {}, signal: AbortSignal.timeout(BOUND_MS) })
  const text = await res.body.text()
  return { statusCode: res.statusCode, headers: res.headers as IncomingHttpHeaders, text, json: () => JSON.parse(text) }
}

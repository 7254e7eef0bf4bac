// The gateway side of the resilience tests (test/resilience): a real Fastify
// gateway on 127.0.0.1 with the plugin and one forwarding route per pool, a
// fresh undici Agent as its client, a log capture, and bounded polls on the
// pools' stats. Everything is closed at teardown.
import Fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { Agent, request, type Dispatcher } from 'undici'
import plugin, { type FastifyHttpPoolsOptions } from '../../index.js'
import type { RegistryStats } from '../../lib/registry/registry.js'
import { logCapture, type LogLine } from './logs.js'
import type { Teardown } from './tap.js'
import { BOUND_MS, eventually } from './wait.js'

export type { LogLine } from './logs.js'
export { WARN } from './logs.js'
export type { Tap } from './tap.js'
export { BOUND_MS, eventually } from './wait.js'
export { config, EXT_NS, pool, REPOSE_NS } from './xml.js'

export interface Sent {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  /** The body, when it could be read to its end. */
  text: string | undefined
  /** Why the body could not be read to its end (the gateway aborted the response). */
  bodyError: (Error & { code?: string }) | undefined
  /** The JSON body (Fastify's error object for failures). */
  json: () => any
  /** ms from sending the request to the end of its body. */
  elapsed: number
}

export interface SendOptions {
  method?: Dispatcher.HttpMethod
  headers?: Record<string, string>
  body?: string | Buffer
}

export interface Gateway {
  app: FastifyInstance
  /** `http://127.0.0.1:PORT` */
  url: string
  /** Every log line the gateway wrote (warn and above, or from `logLevel` on), parsed. */
  logs: LogLine[]
  /**
   * Sends `method` to the route of `poolId`, which forwards to `target` (a full
   * URL) with `reply.from()`. Bounded by BOUND_MS; the body is read to its end
   * or its error kept.
   */
  forward: (poolId: string, target: string, options?: SendOptions) => Promise<Sent>
  /** `app.pools.stats()[id]` */
  stats: (id: string) => RegistryStats[string]
  /** Resolves once pool `id` has nothing running or pending; rejects after `ms`. */
  settled: (id: string, ms?: number) => Promise<RegistryStats[string]>
}

/**
 * A listening gateway built from `xml` (and the plugin's other `options`). For each pool id, `/<id>` (any method)
 * is declared with `{ pool: id }` and forwards to its `to` query parameter.
 * `application/octet-stream` bodies reach the handler as the request stream,
 * so reply-from forwards them as a stream.
 */
export async function gateway (t: Teardown, xml: string, logLevel = 'warn', options: Omit<FastifyHttpPoolsOptions, 'xml' | 'config'> = {}): Promise<Gateway> {
  const logs = logCapture()
  const app = Fastify({ logger: { level: logLevel, stream: logs.stream } })
  t.teardown(async () => { await app.close() })
  await app.register(plugin, { ...options, xml })
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => { done(null, payload) })
  for (const id of app.pools.ids) {
    app.all(`/${id}`, { pool: id }, (req, reply) => reply.from((req.query as { to: string }).to))
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  // A fresh client per gateway: no connection of another test is reused.
  const client = new Agent()
  t.teardown(async () => { await client.destroy() })
  const stats = (id: string): RegistryStats[string] => app.pools.stats()[id]!
  return {
    app,
    url,
    logs: logs.lines,
    forward: async (poolId, target, options = {}) => await send(client, `${url}/${poolId}?to=${encodeURIComponent(target)}`, options),
    stats,
    settled: async (id, ms = 5000) => {
      const idle = (): boolean => { const s = stats(id); return s.running === 0 && s.pending === 0 }
      if (!await eventually(idle, ms)) throw new Error(`pool ${id} did not settle within ${ms} ms: ${JSON.stringify(stats(id))}`)
      return stats(id)
    }
  }
}

/** One request through `dispatcher`, bounded by BOUND_MS; the body is read to its end, or its error kept. */
export async function send (dispatcher: Dispatcher, url: string, options: SendOptions = {}): Promise<Sent> {
  const start = performance.now()
  const res = await request(url, {
    dispatcher,
    method: options.method ?? 'GET',
    ...(options.headers !== undefined ? { headers: options.headers } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
    signal: AbortSignal.timeout(BOUND_MS)
  })
  let text: string | undefined
  let bodyError: Sent['bodyError']
  try {
    text = await res.body.text()
  } catch (err) {
    bodyError = err as Error & { code?: string }
  }
  const elapsed = performance.now() - start
  return { statusCode: res.statusCode, headers: res.headers, text, bodyError, json: () => JSON.parse(text ?? ''), elapsed }
}

/** performance.now() ms since `start`. */
export const since = (start: number): number => performance.now() - start

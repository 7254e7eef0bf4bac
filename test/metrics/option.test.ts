// Issue 17, SPEC "Metrics": the plugin option `metrics` — off with `false`,
// the client's default registry by default, the application's registry with
// `{ registry }` — and several apps publishing to one registry.
import { register, Registry } from '@prometheus-io/client'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import plugin, { type FastifyHttpPoolsOptions } from '../../index.js'
import { value } from '../helpers/metrics.js'
import { upstream, type Teardown } from '../helpers/loopback.js'
import { config, pool } from '../helpers/xml.js'

const NAME = 'http_client_pool_upstream_requests_total'

async function app (t: Teardown, options: Omit<FastifyHttpPoolsOptions, 'xml'>, ids = ['a']): Promise<FastifyInstance> {
  const fastify = Fastify()
  t.teardown(async () => { await fastify.close() })
  await fastify.register(plugin, { ...options, xml: config(...ids.map((id, i) => pool(id, i === 0 ? { default: 'true' } : {}))) })
  await fastify.ready()
  return fastify
}

async function hit (fastify: FastifyInstance, id: string, url: string): Promise<void> {
  await (await fastify.pools.get(id).request(url)).body.text()
}

t.test('metrics: false publishes nothing, not even to the default registry', async (t) => {
  const up = await upstream(t)
  const fastify = await app(t, { metrics: false })
  await hit(fastify, 'a', up.origin)
  t.equal(register.getSingleMetric(NAME), undefined)
})

t.test('by default the metrics go to the client\'s default registry; with { registry } to that one only', async (t) => {
  const up = await upstream(t)
  const mine = new Registry()
  const byDefault = await app(t, {}, ['d'])
  const own = await app(t, { metrics: { registry: mine } }, ['m'])
  await hit(byDefault, 'd', up.origin)
  await hit(own, 'm', up.origin)
  const defaults = await register.metrics()
  const mineText = await mine.metrics()
  t.equal(value(defaults, NAME, { pool: 'd' }), 1)
  t.equal(value(defaults, NAME, { pool: 'm' }), undefined)
  t.equal(value(mineText, NAME, { pool: 'm' }), 1)
  t.equal(value(mineText, NAME, { pool: 'd' }), undefined)
})

t.test('two apps on one registry: no clash, their pools add up; a closed app\'s series go', async (t) => {
  const up = await upstream(t)
  const registry = new Registry()
  const first = await app(t, { metrics: { registry } }, ['shared', 'one'])
  const second = await app(t, { metrics: { registry } }, ['shared', 'two'])
  await hit(first, 'shared', up.origin)
  await hit(first, 'one', up.origin)
  await hit(second, 'shared', up.origin)
  await hit(second, 'two', up.origin)
  let text = await registry.metrics()
  t.equal(value(text, NAME, { pool: 'shared' }), 2)
  t.equal(value(text, NAME, { pool: 'one' }), 1)
  t.equal(value(text, NAME, { pool: 'two' }), 1)
  await second.close()
  text = await registry.metrics()
  t.equal(value(text, NAME, { pool: 'two' }), undefined, 'the closed app\'s pool is gone')
  t.equal(value(text, NAME, { pool: 'shared' }), 1)
  t.equal(value(text, 'http_client_pool_upstream_header_latency_seconds_count', { pool: 'shared', origin: up.origin }), 1, 'a latency series the other app still has stays, with that app\'s latencies (as its counters)')
  t.equal(value(text, 'http_client_pool_upstream_header_latency_seconds_count', { pool: 'two', origin: up.origin }), undefined)
})

// SPEC "Plugin options": `config` (a file) or `xml` (inline), neither gives one
// pool `default` with every default, an invalid config rejects with a
// ConfigError naming file, line, pool and attribute; configRoot; replyFrom
// passes through except what the plugin owns.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import plugin, { ConfigError } from '../../index.js'
import { DEFAULTS } from '../helpers/config.js'
import { get, listenGateway, logCapture, poolsXml, upstream, type Tap } from '../helpers/loopback.js'

const TLS = join(__dirname, '..', 'fixtures', 'tls')

// SPEC "The XML file" and "Extensions": every default.

const TWO_POOLS = poolsXml(`<pool id="first" http.socket.timeout="1111"/>
<pool id="second" default="true" http.conn-manager.max-total="9" http.conn-manager.max-per-route="3"/>`)

// Line 3 (the root start tag is line 1), pool "b", attribute http.socket.timeout.
const INVALID = poolsXml(`<pool id="a" default="true"/>
<pool id="b" http.socket.timeout="soon"/>`)

async function registered (t: Tap, opts: Parameters<typeof plugin>[1]) {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(plugin, opts)
  await app.ready()
  return app
}

async function failure (opts: Parameters<typeof plugin>[1]): Promise<unknown> {
  const app = Fastify()
  try {
    app.register(plugin, opts)
    await app.ready()
  } catch (err) {
    return err
  } finally {
    await app.close().catch(() => {})
  }
  throw new Error('expected register/ready to reject')
}

t.test('`config`: the pools of the file', async (t) => {
  const dir = t.testdir({ 'http-connection-pool.cfg.xml': TWO_POOLS })
  const app = await registered(t, { config: join(dir, 'http-connection-pool.cfg.xml') })
  t.same(app.pools.ids, ['first', 'second'])
  t.equal(app.pools.defaultId, 'second')
  t.equal(app.pools.get('first').settings['http.socket.timeout'], 1111)
  t.equal(app.pools.get().settings['http.conn-manager.max-total'], 9)
})

t.test('`xml`: the pools of the inline config', async (t) => {
  const app = await registered(t, { xml: TWO_POOLS })
  t.same(app.pools.ids, ['first', 'second'])
  t.equal(app.pools.defaultId, 'second')
  t.equal(app.pools.get('second').settings['http.conn-manager.max-per-route'], 3)
})

t.test('neither: one pool `default` with every default, and it forwards', async (t) => {
  const up = await upstream(t)
  const app = Fastify()
  await app.register(plugin, { origin: up.origin })
  app.get('/x', (_req, reply) => reply.from('/x'))
  const base = await listenGateway(t, app)
  t.same(app.pools.ids, ['default'])
  t.equal(app.pools.defaultId, 'default')
  t.equal(app.pools.has('default'), true)
  const settings = app.pools.get().settings as unknown as Record<string, unknown>
  for (const [key, value] of Object.entries({ ...DEFAULTS, default: true })) t.same(settings[key], value, `${key} = ${JSON.stringify(value)}`)
  t.equal(settings['http.route.default-proxy'] ?? null, null)
  t.equal(settings['truststore-filename'] ?? null, null)
  t.equal((await get(`${base}/x`)).statusCode, 200)
})

t.test('an invalid config file: register/ready reject with a ConfigError naming file, line, pool and attribute', async (t) => {
  const dir = t.testdir({ 'bad.cfg.xml': INVALID })
  const file = join(dir, 'bad.cfg.xml')

  const err = await failure({ config: file })
  t.ok(err instanceof ConfigError, 'a ConfigError')
  const message = (err as Error).message
  t.match(message, file, 'names the file')
  t.match(message, /:3\b/, 'names the line')
  t.match(message, /"b"/, 'names the pool id')
  t.match(message, /http\.socket\.timeout/, 'names the attribute')
  t.match((err as ConfigError).errors, [{ line: 3, pool: 'b', attribute: 'http.socket.timeout' }])

  // Awaiting register itself rejects the same way.
  const app = Fastify()
  t.teardown(async () => { await app.close().catch(() => {}) })
  await t.rejects(async () => { await app.register(plugin, { config: file }) }, ConfigError)
})

t.test('invalid inline XML: a ConfigError naming line, pool and attribute', async (t) => {
  const err = await failure({ xml: INVALID })
  t.ok(err instanceof ConfigError)
  t.match((err as Error).message, /line 3.*"b".*http\.socket\.timeout/)

  const notXml = await failure({ xml: '<http-connection-pools' })
  t.ok(notXml instanceof ConfigError, 'malformed XML too')
})

t.test('a config file that cannot be read: a ConfigError naming it', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'missing.cfg.xml')
  const err = await failure({ config: file })
  t.ok(err instanceof ConfigError)
  t.match((err as Error).message, file)
})

t.test('both `config` and `xml`: an error', async (t) => {
  const dir = t.testdir({ 'p.cfg.xml': TWO_POOLS })
  const err = await failure({ config: join(dir, 'p.cfg.xml'), xml: TWO_POOLS })
  t.ok(err instanceof Error)
  t.match((err as Error).message, /config/)
  t.match((err as Error).message, /xml/)
})

t.test('configRoot: store names resolve next to the config file by default, else in configRoot, else the working directory', async (t) => {
  const xml = poolsXml('<pool id="a" default="true" truststore-filename="trust.pem"/>')
  const dir = t.testdir({ 'p.cfg.xml': xml, other: {} })
  copyFileSync(join(TLS, 'ca.pem'), join(dir, 'trust.pem'))

  const fromFile = await registered(t, { config: join(dir, 'p.cfg.xml') })
  t.equal(fromFile.pools.get().settings['truststore-filename'], 'trust.pem', 'found next to the file')

  const fromRoot = await registered(t, { xml, configRoot: dir })
  t.same(fromRoot.pools.ids, ['a'], 'inline XML with configRoot')

  const wrongRoot = await failure({ config: join(dir, 'p.cfg.xml'), configRoot: join(dir, 'other') })
  t.ok(wrongRoot instanceof ConfigError, 'configRoot overrides the file\'s folder')
  t.match((wrongRoot as Error).message, /truststore-filename/)

  const cwd = await failure({ xml })
  t.ok(cwd instanceof ConfigError, 'inline XML without configRoot resolves in the working directory')
})

t.test('replyFrom: options pass through to reply-from, except the ones the plugin owns', async (t) => {
  const up = await upstream(t)
  const other = await upstream(t)
  const xml = poolsXml('<pool id="main" default="true"><headers><header name="x-pool" value="main"/></headers></pool>')
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'info', stream: logs.stream } })
  await app.register(plugin, {
    xml,
    origin: up.origin,
    replyFrom: {
      disableRequestLogging: true, // passed through
      base: other.origin, // owned: origin wins
      http: {}, // owned: would make reply-from use node:http, outside the pools
      undici: { connections: 1 } // owned
    }
  })
  app.get('/x', (_req, reply) => reply.from('/x'))
  const base = await listenGateway(t, app)

  const res = await get(`${base}/x`)
  t.equal(res.statusCode, 200)
  t.equal(res.json().headers['x-pool'], 'main', 'still carried by the pool')
  t.equal(up.seen.length, 1, 'to the origin')
  t.equal(other.seen.length, 0, 'not to replyFrom.base')
  t.notOk(logs.lines.some((l) => l.msg === 'fetching from remote server'), 'disableRequestLogging reached reply-from')
})

t.test('replyFrom.destroyAgent: the plugin owns the pools, so close neither crashes nor cuts a request in flight', async (t) => {
  let answer = (): void => {}
  const up = await upstream(t, (_req, res) => { answer = () => { res.end('done') } })
  const app = Fastify()
  await app.register(plugin, { xml: poolsXml('<pool id="main" default="true"/>'), origin: up.origin, replyFrom: { destroyAgent: true } })
  app.get('/x', (_req, reply) => reply.from('/x'))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  // reset: the gateway's close would otherwise wait for this keep-alive connection's timeout.
  const inFlight = get(`http://127.0.0.1:${port}/x`, { reset: true })
  await up.nth(1)
  const closed = app.close()
  setTimeout(() => { answer() }, 50)
  await t.resolves(closed, 'app.close() resolves')
  const res = await inFlight
  t.same([res.statusCode, res.text], [200, 'done'], 'the request in flight finished')
})

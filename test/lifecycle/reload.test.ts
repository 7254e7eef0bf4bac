// pools.reload(): Repose's guarantee that a reload never breaks a request in
// flight, pools whose settings did not change keep their dispatcher and
// cache, and an invalid reload (or one removing a pool a route uses) changes
// nothing but is reported: rejected promise, stats, log.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { ConfigError } from '../../index.js'
import { BOUND_MS, clientAgent, config, gateway, now, pool, upstream, waitFor, type LogLine, type Teardown, type Upstream } from '../helpers/lifecycle.js'

const INFO = 30
const ERROR = 50

/** The ConfigError that `p` rejects with; fails loudly when it resolves or rejects with something else. */
async function rejection (p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError, but the reload was accepted')
}

/**
 * An upstream that answers with the `x-config` header the pool sent, and
 * delays `/slow` by `slowMs`; `hits` counts the requests per URL.
 */
async function configEcho (t: Teardown, slowMs = 0): Promise<Upstream & { hits: Map<string, number> }> {
  const hits = new Map<string, number>()
  const up = await upstream(t, (req, res) => {
    hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1)
    res.setHeader('x-config-seen', String(req.headers['x-config'] ?? 'none'))
    if (req.url === '/slow') {
      // Nothing at all until then: the exchange waits for its response throughout.
      setTimeout(() => { res.end('slow done') }, slowMs)
    } else {
      res.end(`ok ${req.url}`)
    }
  })
  return Object.assign(up, { hits })
}

t.test('a request in flight survives a reload that changes its pool; an unchanged pool keeps its dispatcher and cache', async (t) => {
  const SLOW_MS = 3000
  const up = await configEcho(t, SLOW_MS)
  const steadyAttrs = { 'cache.ttl': '60000', 'x:retry.max-attempts': '1' }
  const v1 = config(
    pool('main', { default: 'true', 'http.socket.timeout': '10000', 'x:retry.max-attempts': '1' }, { 'x-config': 'one' }),
    pool('steady', steadyAttrs))
  const v2 = config(
    pool('main', { default: 'true', 'http.socket.timeout': '20000', 'x:retry.max-attempts': '1' }, { 'x-config': 'two' }),
    pool('steady', steadyAttrs))
  const gw = await gateway(t, {
    plugin: { xml: v1 },
    routes: { '/slow': { pool: 'main', to: `${up.origin}/slow` }, '/fast': { pool: 'main', to: `${up.origin}/fast` } }
  })
  const agent = clientAgent(t)
  const pools = gw.app.pools

  // The steady pool caches a response under a key.
  const cached = await pools.get('steady').request(`${up.origin}/cached`, { cacheKey: 'k', signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(await cached.body.text(), 'ok /cached')
  t.equal(up.hits.get('/cached'), 1)

  // A request through the gateway that the upstream answers over 3 s.
  const sentAt = now()
  let slowDoneAt = Infinity
  const slow = request(`${gw.url}/slow`, { dispatcher: agent, signal: AbortSignal.timeout(BOUND_MS + SLOW_MS) }).then(async (res) => {
    const body = await res.body.text()
    slowDoneAt = now()
    return { statusCode: res.statusCode, headers: res.headers, body }
  })
  slow.catch(() => {}) // awaited below
  await waitFor(() => up.conns.some((c) => c.requests.length > 0 && c.requests[0]! >= sentAt), BOUND_MS, 'the slow request to reach the upstream')
  const slowConn = up.conns.find((c) => c.requests.length > 0 && c.requests[0]! >= sentAt)!

  const mainBefore = pools.entryFor('main').dispatcher
  const steadyBefore = pools.entryFor('steady').dispatcher
  await pools.reload({ xml: v2 })
  t.ok(now() < slowDoneAt, 'the reload completed while the slow request was in flight')

  t.not(pools.entryFor('main').dispatcher, mainBefore, 'the changed pool got a new dispatcher')
  t.equal(pools.get('main').settings['http.socket.timeout'], 20000, 'with the new settings')
  t.equal(pools.entryFor('steady').dispatcher, steadyBefore, 'the unchanged pool kept its dispatcher (the same object)')

  const fresh = await request(`${gw.url}/fast`, { dispatcher: agent, signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(fresh.statusCode, 200)
  t.equal(fresh.headers['x-config-seen'], 'two', 'a new request goes through the new pool')
  await fresh.body.text()

  const again = await pools.get('steady').request(`${up.origin}/cached`, { cacheKey: 'k', signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(await again.body.text(), 'ok /cached')
  t.equal(up.hits.get('/cached'), 1, 'the unchanged pool kept its cache: the keyed request did not reach the upstream again')
  t.equal(pools.stats().steady!.cacheHits, 1)

  t.ok(now() < slowDoneAt, 'all that while the slow request was still in flight')
  const res = await slow
  t.equal(res.statusCode, 200, 'the in-flight request completed with 200')
  t.equal(res.body, 'slow done', 'and its whole body')
  t.equal(res.headers['x-config-seen'], 'one', 'on the pool it started on')
  t.ok(slowDoneAt - sentAt >= SLOW_MS - 50, 'after the upstream\'s delay')

  // The replaced dispatcher closes its connection once its request is done.
  await waitFor(() => slowConn.endedAt !== undefined, BOUND_MS, 'the old pool\'s connection to close')
  t.pass('the old pool closed its connection after the request finished')
  t.match(pools.stats().main, { reloads: 1, lastReloadError: null })
})

t.test('an invalid reload, or one removing a pool that a route uses, is rejected and changes nothing; every reload logs what changed per pool', async (t) => {
  const up = await configEcho(t)
  const attrs = { 'x:retry.max-attempts': '1' }
  const v1 = config(
    pool('main', { default: 'true', ...attrs }, { 'x-config': 'one-secret-value' }),
    pool('other', attrs),
    pool('spare', attrs))
  const gw = await gateway(t, {
    plugin: { xml: v1 },
    routes: { '/main': { pool: 'main', to: `${up.origin}/main` }, '/other': { pool: 'other', to: `${up.origin}/other` } }
  })
  const agent = clientAgent(t)
  const pools = gw.app.pools
  const get = async (path: string): Promise<{ statusCode: number, seen: unknown }> => {
    const res = await request(`${gw.url}${path}`, { dispatcher: agent, signal: AbortSignal.timeout(BOUND_MS) })
    await res.body.text()
    return { statusCode: res.statusCode, seen: res.headers['x-config-seen'] }
  }
  const reloadLines = (): LogLine[] => gw.logs.filter((l) => /config reload/.test(l.msg ?? ''))
  t.same(await get('/main'), { statusCode: 200, seen: 'one-secret-value' })
  const mainBefore = pools.entryFor('main').dispatcher

  // Line 3 (the second pool) carries a value of the wrong type.
  const invalid = config(
    pool('main', { default: 'true', ...attrs }, { 'x-config': 'two' }),
    pool('other', { ...attrs, 'http.socket.timeout': 'soon' }))
  const err = await rejection(pools.reload({ xml: invalid }))
  t.ok(err instanceof ConfigError, 'rejects with a ConfigError')
  t.match(err.errors, [{ line: 3, pool: 'other', attribute: 'http.socket.timeout' }])
  t.match(err.message, /line 3/, 'the message names the line')
  t.match(err.message, /http\.socket\.timeout/, 'and the attribute')
  const stats = pools.stats()
  for (const id of ['main', 'other', 'spare']) {
    t.match(stats[id], { reloads: 0, lastReloadError: err.message }, `stats().${id}.lastReloadError is the error`)
  }
  t.same(await get('/main'), { statusCode: 200, seen: 'one-secret-value' }, 'the old pools keep serving')
  t.equal(pools.entryFor('main').dispatcher, mainBefore, 'with the same dispatcher')
  t.same(pools.ids, ['main', 'other', 'spare'])
  t.match(reloadLines().at(-1), { level: ERROR, msg: /rejected.*line 3.*http\.socket\.timeout/ }, 'the rejection is logged')

  // Removing `other`, which route /other uses (removing `spare` alone would be fine).
  const removing = config(pool('main', { default: 'true', ...attrs }, { 'x-config': 'two' }))
  const removal = await rejection(pools.reload({ xml: removing }))
  t.match(removal.errors, [{ pool: 'other', message: /used by a route/ }], 'the error names the pool a route uses')
  t.notMatch(removal.message, /spare/, 'not the unused pool')
  t.match(pools.stats().main, { reloads: 0, lastReloadError: removal.message })
  t.same(await get('/other'), { statusCode: 200, seen: 'none' }, 'the pool keeps serving its route')
  t.same(await get('/main'), { statusCode: 200, seen: 'one-secret-value' })
  t.same(pools.ids, ['main', 'other', 'spare'])
  t.match(reloadLines().at(-1), { level: ERROR, msg: /rejected.*other/ }, 'the rejection is logged')

  // A valid reload: one pool changed, one unchanged, one added, one removed.
  const v2 = config(
    pool('main', { default: 'true', ...attrs, 'http.socket.timeout': '5000' }, { 'x-config': 'two' }),
    pool('other', attrs),
    pool('extra', attrs))
  await pools.reload({ xml: v2 })
  t.same(pools.ids, ['main', 'other', 'extra'])
  t.match(pools.stats().main, { reloads: 1, lastReloadError: null }, 'a successful reload clears the error and is counted')
  t.same(await get('/main'), { statusCode: 200, seen: 'two' })
  const lines = reloadLines()
  t.same(lines.map((l) => l.level), [ERROR, ERROR, INFO], 'every reload logged one line')
  t.same(lines.at(-1)!.pools, { main: 'changed: http.socket.timeout, headers', other: 'unchanged', extra: 'added', spare: 'removed' }, 'what changed, per pool')
  t.match(lines.at(-1)!.msg, /main: changed: http\.socket\.timeout, headers/)
  t.notMatch(JSON.stringify(gw.logs), /one-secret-value/, 'static header values never appear in the logs')
})

t.test('reload() re-reads the config file: an invalid file is rejected naming the file and line, the old pools keep serving', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fhp-reload-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'http-connection-pool.cfg.xml')
  const up = await configEcho(t)
  const valid = (value: string): string => config(pool('main', { default: 'true', 'x:retry.max-attempts': '1' }, { 'x-config': value }))
  writeFileSync(file, valid('one'))
  const gw = await gateway(t, { plugin: { config: file }, routes: { '/main': { pool: 'main', to: `${up.origin}/main` } } })
  const client = gw.app.pools.get('main')
  const seen = async (): Promise<unknown> => {
    const res = await client.request(`${up.origin}/x`, { signal: AbortSignal.timeout(BOUND_MS) })
    await res.body.text()
    return res.headers['x-config-seen']
  }
  t.equal(await seen(), 'one')

  writeFileSync(file, config(pool('main', { default: 'true', 'x:connection.max-lifetime': '-5' })))
  const err = await rejection(gw.app.pools.reload())
  t.match(err.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2`), 'the message names file:line')
  t.match(err.message, /x:connection\.max-lifetime/, 'and the attribute')
  t.equal(gw.app.pools.stats().main!.lastReloadError, err.message)
  t.equal(await seen(), 'one', 'the old pool keeps serving')

  writeFileSync(file, valid('two'))
  await gw.app.pools.reload()
  t.equal(await seen(), 'two', 'a valid file is applied')
  t.equal(gw.app.pools.stats().main!.lastReloadError, null)
})

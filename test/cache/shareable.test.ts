// SPEC "Cache keys (cache.ttl)": on forwarded routes a response with
// Set-Cookie, Cache-Control private/no-store or Vary: * goes only to the
// request that caused it; waiters make their own requests and nothing is
// cached. request() callers chose their key on purpose and get Repose's
// behaviour: every response is shared. Controls (Vary: Accept, Cache-Control:
// public) show the rule is no broader than that.
import t from 'tap'
import { BOUND_MS, cacheUpstream, call, gatewayApp, listenClient, numbered, poolsXml, within, type Tap } from '../helpers/cache.js'

const XML = poolsXml('<pool id="a" default="true" cache.ttl="10000" x:retry.max-attempts="1"/>')

/** Extra response headers per upstream path; `{n}` becomes the upstream request number. */
const PRIVATE: Record<string, Record<string, string>> = {
  '/set-cookie': { 'set-cookie': 'sid={n}; HttpOnly' },
  '/cache-control-private': { 'cache-control': 'private' },
  '/cache-control-max-age-private': { 'cache-control': 'max-age=60, private' },
  '/cache-control-no-store': { 'cache-control': 'no-store' },
  '/vary-star': { vary: '*' }
}
const SHAREABLE: Record<string, Record<string, string>> = {
  '/vary-accept': { vary: 'Accept' },
  '/cache-control-public': { 'cache-control': 'public, max-age=60' }
}

const CLIENTS = 5

/** A header's values as an array (undici gives one Set-Cookie as a string, several as an array). */
const values = (v: string | string[] | undefined): string[] => v === undefined ? [] : [v].flat()

async function setup (t: Tap) {
  const up = await cacheUpstream(t, (req, res, a) => {
    for (const [name, value] of Object.entries({ ...PRIVATE, ...SHAREABLE }[req.url!] ?? {})) res.setHeader(name, value.replace('{n}', String(a.n)))
    numbered(req, res, a)
  }, true)
  const app = await gatewayApp(t, { xml: XML, origin: up.origin })
  let keyCalls = 0
  let releaseAt = Infinity
  for (const path of [...Object.keys(PRIVATE), ...Object.keys(SHAREABLE)]) {
    app.get(path, {
      pool: 'a',
      cacheKey: (req) => {
        if (++keyCalls === releaseAt) up.release()
        return req.headers.authorization
      }
    }, (_req, reply) => reply.from())
  }
  const client = await listenClient(t, app)
  return { up, app, client, releaseAfter: (n: number) => { up.hold(); releaseAt = keyCalls + n } }
}

for (const [path, headers] of Object.entries(PRIVATE)) {
  const [name, value] = Object.entries(headers)[0]!
  t.test(`${name}: ${value} on a forwarded route goes only to the request that caused it`, async (t) => {
    const gw = await setup(t)
    gw.releaseAfter(CLIENTS)
    const got = await within(Promise.all(Array.from({ length: CLIENTS }, () => call(gw.client, path, { headers: { authorization: 'k' } }))), BOUND_MS, 'every client gets a response')
    t.equal(gw.up.count, CLIENTS, 'the waiters made their own upstream requests: one per client')
    t.same(got.map((g) => g.json().n).sort(), [1, 2, 3, 4, 5], 'no response went to two clients')
    for (const [i, g] of got.entries()) {
      const n = g.json().n as number
      t.equal(g.statusCode, 203, `client ${i}: status`)
      t.equal(g.headers['x-upstream'], String(n), `client ${i}: headers of the same upstream response as its body`)
      t.same(values(g.headers[name]), [value.replace('{n}', String(n))], `client ${i}: its own ${name}`)
    }
    t.equal(gw.app.pools.stats().a!.cacheEntries, 0, 'nothing cached')
    const next = await call(gw.client, path, { headers: { authorization: 'k' } })
    t.equal(next.json().n, CLIENTS + 1, 'a later request goes upstream')
  })

  t.test(`${name}: ${value} through request() is shared, as in Repose`, async (t) => {
    const gw = await setup(t)
    const pool = gw.app.pools.get('a')
    const calls = Array.from({ length: CLIENTS }, () => pool.request(`${gw.up.origin}${path}`, { cacheKey: 'k' }))
    await within(gw.up.arrived(1), BOUND_MS, 'the first request reaches the upstream')
    gw.up.release()
    const responses = await within(Promise.all(calls), BOUND_MS, 'every caller gets the response')
    t.equal(gw.up.count, 1, 'one upstream request for all callers')
    for (const [i, r] of responses.entries()) {
      t.same(await r.body.json(), { n: 1, method: 'GET', url: path, pool: null }, `caller ${i}: the shared body`)
      t.same(values(r.headers[name]), [value.replace('{n}', '1')], `caller ${i}: the shared ${name}`)
    }
    await (await pool.request(`${gw.up.origin}${path}`, { cacheKey: 'k' })).body.dump()
    t.equal(gw.up.count, 1, 'and cached')
  })
}

for (const [path, headers] of Object.entries(SHAREABLE)) {
  const [name, value] = Object.entries(headers)[0]!
  t.test(`control: ${name}: ${value} on a forwarded route is shared and cached`, async (t) => {
    const gw = await setup(t)
    gw.releaseAfter(CLIENTS)
    const got = await within(Promise.all(Array.from({ length: CLIENTS }, () => call(gw.client, path, { headers: { authorization: 'k' } }))), BOUND_MS, 'every client gets a response')
    t.equal(gw.up.count, 1, 'one upstream request')
    t.ok(got.every((g) => g.json().n === 1 && g.headers[name] === value), 'every client got the one response')
    t.equal(gw.app.pools.stats().a!.cacheEntries, 1, 'cached')
  })
}

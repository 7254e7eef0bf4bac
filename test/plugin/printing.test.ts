// SPEC "Nothing leaks": util.inspect and JSON.stringify of the registry, a
// client, its dispatcher and settings, and a log line holding them, show no
// password, proxy user-info, Proxy-Authorization value or static header
// value, also while requests are in flight, through a real proxy with
// credentials.
import t from 'tap'
import { config, pool } from '../helpers/xml.js'
import { upstream } from '../helpers/loopback.js'
import { leakProbe, leaksOf } from '../helpers/secrets.js'
import { startTinyproxy } from '../helpers/tinyproxy.js'

const HEADER = 'Bearer hdr-Zq81vXk'
const PROXY_USER = 'fhp'
const PROXY_PASS = 'Pr0xy-Wq93'
// test/fixtures/config/README.md: the passwords of secret-client.jks and secret-trust.jks.
const STORE_PASSWORDS = ['Sup3rS3cr3t-ks', 'Sup3rS3cr3t-key', 'Sup3rS3cr3t-ts']

t.test('what the package hands out prints no secret', async (t) => {
  const proxy = await startTinyproxy(t, { basicAuth: { user: PROXY_USER, pass: PROXY_PASS } })
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  // Answers once the test has printed everything, so the requests are in flight meanwhile.
  const up = await upstream(t, (_req, res) => { held.then(() => res.end('ok'), () => {}) })
  const probe = await leakProbe(t)
  const loaded = await probe.texts(config(
    pool('main', {
      default: 'true',
      'keystore-filename': 'secret-client.jks',
      'keystore-password': 'Sup3rS3cr3t-ks',
      'key-password': 'Sup3rS3cr3t-key',
      'truststore-filename': 'secret-trust.jks',
      'truststore-password': 'Sup3rS3cr3t-ts'
    }, { authorization: HEADER }),
    pool('proxied', { 'http.route.default-proxy': `http://${PROXY_USER}:${PROXY_PASS}@${proxy.address}` }, { 'x-api-key': HEADER })
  ))
  t.equal(loaded['reload error'], undefined, 'the config loads')
  const responses = ['main', 'proxied'].map(async (id) => await probe.app.pools.get(id).request(`${up.origin}/${id}`))
  await up.nth(2)
  const printed = probe.printed()
  release()
  for (const res of await Promise.all(responses)) {
    t.equal(res.statusCode, 200, 'a request went through')
    await res.body.dump()
  }
  const seen = Object.fromEntries(up.seen.map((s) => [s.url, s.headers]))
  t.equal(seen['/main']!.authorization, HEADER, 'the static header was sent')
  t.match(seen['/proxied']!.via, /tinyproxy/, 'the proxied pool went through the proxy, with its credentials')

  const basic = Buffer.from(`${PROXY_USER}:${PROXY_PASS}`).toString('base64')
  for (const secret of [HEADER, PROXY_PASS, basic, ...STORE_PASSWORDS]) t.same(leaksOf(printed, secret), [], `${secret} is printed nowhere`)
  t.match(printed['inspect(registry)'], /PoolRegistry .*defaultId: 'main'/s, 'the registry still prints what it holds')
  t.match(printed['inspect(client proxied)'], /HttpClient .*id: 'proxied'.*'http.route.default-proxy': 'http:\/\/\*\*\*@127\.0\.0\.1:\d+'/s, 'a client prints its id and masked settings')
  t.match(printed['inspect(dispatcher main)'], /CurrentDispatcher .*pool: 'main'/s, 'a dispatcher prints its pool')
  t.match(JSON.parse(printed['JSON(dispatcher proxied)']!), { pool: 'proxied' })
})

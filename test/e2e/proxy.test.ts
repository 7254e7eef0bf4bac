// Issue 4, end to end: http.route.default-proxy through a real forward proxy
// (tinyproxy). http targets go to the proxy in absolute form, https targets
// through a CONNECT tunnel with the pool's TLS (truststore, client
// certificate, SNI, HTTP/2) inside; proxy credentials are sent, never shown;
// a proxy that refuses or dies is a 502; an IPv6 proxy address works.
import { networkInterfaces } from 'node:os'
import { inspect } from 'node:util'
import t from 'tap'
import {
  config, gateway, http2Upstream, httpUpstream, httpsUpstream, JKS_KEYSTORE, mutualTls, PEM_TRUSTSTORE, peerCn, pool,
  closedPort, poolGet, rejection, serverTls, servername, type Got, type Teardown
} from '../helpers/e2e.js'
import { startTinyproxy } from '../helpers/tinyproxy.js'

const USER = 'fhp'
const PASS = 's3cr3tPw'

interface Arrival { via?: string, proxyAuthorization?: string, url?: string, host?: string }

/** An http upstream that answers with what it saw of the request. */
async function plainUpstream (t: Teardown) {
  return await httpUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.setHeader('x-upstream', 'plain')
    res.end(JSON.stringify({ via: req.headers.via, proxyAuthorization: req.headers['proxy-authorization'], url: req.url, host: req.headers.host } satisfies Arrival))
  })
}

const bodyOf = (got: Got): Arrival => got.statusCode === 200 ? got.json() as Arrival : {}

t.test('through a proxy without authentication', async (t) => {
  const proxy = await startTinyproxy(t)
  const plain = await plainUpstream(t)
  const tlsUp = await httpsUpstream(t, serverTls(), (req, res) => { res.end(`sni=${servername(req)}`) })
  const mtlsUp = await httpsUpstream(t, mutualTls(), (req, res) => { res.end(`cn=${peerCn(req)}`) })
  const h2Up = await http2Upstream(t, { ...serverTls(), allowHTTP1: true }, (req, res) => { res.end(req.httpVersion) })
  const forms = {
    'host-port': proxy.address,
    'http-url': `http://${proxy.address}`,
    'http-url-slash': `http://${proxy.address}/`
  }
  const gw = await gateway(t, config(
    ...Object.entries(forms).map(([id, value], i) => pool(id, { ...(i === 0 ? { default: 'true' } : {}), ...PEM_TRUSTSTORE, 'http.route.default-proxy': value })),
    pool('mtls', { ...JKS_KEYSTORE, ...PEM_TRUSTSTORE, 'http.route.default-proxy': proxy.address }),
    pool('h2', { ...PEM_TRUSTSTORE, 'x:http2': 'true', 'http.route.default-proxy': proxy.address })
  ))

  t.test('http target: absolute form through the proxy', async (t) => {
    for (const id of Object.keys(forms)) {
      const target = `http://127.0.0.1:${plain.port}/some/path?q=1`
      const forwarded = await gw.forward(id, target)
      t.equal(forwarded.statusCode, 200, `${id}, reply.from: 200`)
      t.equal(forwarded.headers['x-upstream'], 'plain', `${id}, reply.from: the client gets the upstream's response`)
      const seen = bodyOf(forwarded)
      t.match(seen.via, /tinyproxy/, `${id}, reply.from: the request reached the upstream through the proxy (via: ${String(seen.via)})`)
      t.equal(seen.url, '/some/path?q=1', `${id}, reply.from: path and query arrive unchanged`)
      t.equal(seen.host, `127.0.0.1:${plain.port}`, `${id}, reply.from: the host header names the target`)

      const direct = await poolGet(gw.app, id, target)
      t.equal(direct.statusCode, 200, `${id}, request(): 200`)
      t.match(bodyOf(direct).via, /tinyproxy/, `${id}, request(): through the proxy`)
    }
  })

  t.test('https target: CONNECT tunnel, TLS verified against the truststore inside', async (t) => {
    for (const id of Object.keys(forms)) {
      const forwarded = await gw.forward(id, `https://localhost:${tlsUp.port}/`)
      t.equal(forwarded.statusCode, 200, `${id}, reply.from: 200`)
      t.equal(forwarded.text, 'sni=localhost', `${id}, reply.from: the upstream's body; SNI is the target's host name`)
      const direct = await poolGet(gw.app, id, `https://localhost:${tlsUp.port}/`)
      t.equal(direct.statusCode, 200, `${id}, request(): 200`)
      t.equal(direct.text, 'sni=localhost', `${id}, request(): the upstream's body`)
    }
    const byIp = await poolGet(gw.app, 'host-port', `https://127.0.0.1:${tlsUp.port}/`)
    t.equal(byIp.text, 'sni=', 'by IP address: 200 and no SNI')
    t.match(proxy.log(), new RegExp(`CONNECT localhost:${tlsUp.port}`), 'the proxy saw the CONNECT to the target')
  })

  t.test('the client certificate applies inside the tunnel', async (t) => {
    const forwarded = await gw.forward('mtls', `https://localhost:${mtlsUp.port}/`)
    t.equal(forwarded.statusCode, 200, 'reply.from: 200')
    t.equal(forwarded.text, 'cn=fhp-client', 'reply.from: the upstream verified fhp-client')
    const direct = await poolGet(gw.app, 'mtls', `https://localhost:${mtlsUp.port}/`)
    t.equal(direct.statusCode, 200, 'request(): 200')
    t.equal(direct.text, 'cn=fhp-client', 'request(): the upstream verified fhp-client')
    // A pool of the same proxy without a keystore is refused by that upstream.
    t.equal((await gw.forward('host-port', `https://localhost:${mtlsUp.port}/`)).statusCode, 502, 'without a keystore: 502')
  })

  t.test('x:http2 is negotiated inside the tunnel', async (t) => {
    const direct = await poolGet(gw.app, 'h2', `https://localhost:${h2Up.port}/`)
    t.equal(direct.text, '2.0', 'request(): HTTP/2')
    const forwarded = await gw.forward('h2', `https://localhost:${h2Up.port}/`)
    t.equal(forwarded.statusCode, 200, 'reply.from: 200')
    t.equal(forwarded.text, '2.0', 'reply.from: HTTP/2')
    t.equal((await poolGet(gw.app, 'host-port', `https://localhost:${h2Up.port}/`)).text, '1.1', 'without x:http2: HTTP/1.1')
  })

  t.test('a proxy that dies: 502', async (t) => {
    // Connections to the proxy exist (kept alive, or tunnels) when it dies.
    await proxy.kill()
    for (const target of [`http://127.0.0.1:${plain.port}/`, `https://localhost:${tlsUp.port}/`]) {
      const forwarded = await gw.forward('host-port', target)
      t.equal(forwarded.statusCode, 502, `${target}, reply.from: 502 (${String((forwarded.json() as { code?: string }).code)})`)
      await rejection(poolGet(gw.app, 'host-port', target))
      t.pass(`${target}, request(): rejects`)
    }
  })
})

t.test('through a proxy that requires authentication', async (t) => {
  const proxy = await startTinyproxy(t, { basicAuth: { user: USER, pass: PASS } })
  const plain = await plainUpstream(t)
  const tlsUp = await httpsUpstream(t, serverTls(), (_req, res) => { res.end('tls') })
  const gw = await gateway(t, config(
    pool('url-creds', { default: 'true', ...PEM_TRUSTSTORE, 'http.route.default-proxy': `http://${USER}:${PASS}@${proxy.address}` }),
    pool('bare-creds', { ...PEM_TRUSTSTORE, 'http.route.default-proxy': `${USER}:${PASS}@${proxy.address}` }),
    pool('no-creds', { ...PEM_TRUSTSTORE, 'http.route.default-proxy': proxy.address }),
    pool('wrong-creds', { ...PEM_TRUSTSTORE, 'http.route.default-proxy': `http://${USER}:n0tThePw@${proxy.address}` })
  // Everything the gateway logs, down to trace: the credentials must be in none of it.
  ), { logLevel: 'trace' })

  t.test('with user:pass@: 200 for http and https targets', async (t) => {
    for (const id of ['url-creds', 'bare-creds']) {
      const forwarded = await gw.forward(id, `http://127.0.0.1:${plain.port}/`)
      t.equal(forwarded.statusCode, 200, `${id}, http, reply.from: 200`)
      const seen = bodyOf(forwarded)
      t.match(seen.via, /tinyproxy/, `${id}, http: through the proxy`)
      t.equal(seen.proxyAuthorization, undefined, `${id}, http: the credentials stop at the proxy`)
      t.equal((await poolGet(gw.app, id, `http://127.0.0.1:${plain.port}/`)).statusCode, 200, `${id}, http, request(): 200`)
      const tunnelled = await gw.forward(id, `https://localhost:${tlsUp.port}/`)
      t.equal(tunnelled.statusCode, 200, `${id}, https, reply.from: 200`)
      t.equal(tunnelled.text, 'tls', `${id}, https, reply.from: the upstream's body`)
      t.equal((await poolGet(gw.app, id, `https://localhost:${tlsUp.port}/`)).statusCode, 200, `${id}, https, request(): 200`)
    }
  })

  t.test('without or with wrong credentials: the proxy\'s answer for http, 502 for https', async (t) => {
    const hitsBefore = [plain.hits(), tlsUp.hits()]
    // Without credentials tinyproxy answers 407; with wrong ones, 401 (tinyproxy 1.11's choice).
    for (const [id, status] of [['no-creds', 407], ['wrong-creds', 401]] as const) {
      const forwarded = await gw.forward(id, `http://127.0.0.1:${plain.port}/`)
      t.equal(forwarded.statusCode, status, `${id}, http, reply.from: the proxy's ${status}`)
      t.match(forwarded.text, /Generated by tinyproxy/, `${id}, http, reply.from: the proxy's body`)
      t.equal((await poolGet(gw.app, id, `http://127.0.0.1:${plain.port}/`)).statusCode, status, `${id}, http, request(): the proxy's ${status}`)

      const tunnelled = await gw.forward(id, `https://localhost:${tlsUp.port}/`)
      t.equal(tunnelled.statusCode, 502, `${id}, https, reply.from: 502 (${String((tunnelled.json() as { code?: string }).code)})`)
      const err = await rejection(poolGet(gw.app, id, `https://localhost:${tlsUp.port}/`))
      t.match(err.message, String(status), `${id}, https, request(): rejects, naming the proxy's status (${err.message})`)
    }
    t.same([plain.hits(), tlsUp.hits()], hitsBefore, 'nothing reached the upstreams')
  })

  t.test('proxy user-info is never shown', async (t) => {
    const basic = Buffer.from(`${USER}:${PASS}`).toString('base64')
    // An error path too, so that error logging is covered: the proxy dies.
    await proxy.kill()
    t.equal((await gw.forward('url-creds', `https://localhost:${tlsUp.port}/`)).statusCode, 502, 'dead proxy: 502')
    t.equal((await gw.forward('bare-creds', `http://127.0.0.1:${plain.port}/`)).statusCode, 502, 'dead proxy, http target: 502')
    const logs = gw.rawLogs()
    t.ok(logs.length > 0, 'the gateway logged')
    t.notOk(logs.includes(PASS), 'the password is not in the logs')
    t.notOk(logs.includes(basic), 'the Basic credentials are not in the logs')
    for (const id of ['url-creds', 'bare-creds', 'wrong-creds']) {
      const settings = gw.app.pools.get(id).settings
      const json = JSON.stringify(settings)
      t.notOk(json.includes(PASS) || json.includes('n0tThePw'), `${id}: not in JSON.stringify(settings)`)
      t.notOk(inspect(settings).includes(PASS) || inspect(settings).includes('n0tThePw'), `${id}: not in util.inspect(settings)`)
      t.match(json, new RegExp(`"http.route.default-proxy":"[^"]*\\*\\*\\*[^"]*127\\.0\\.0\\.1:${proxy.port}`), `${id}: the proxy prints with its user-info masked`)
    }
    t.notOk(JSON.stringify(gw.app.pools.stats()).includes(PASS), 'not in stats()')
  })
})

t.test('a proxy that refuses connections: 502', async (t) => {
  const port = await closedPort()
  const plain = await plainUpstream(t)
  const tlsUp = await httpsUpstream(t, serverTls(), (_req, res) => { res.end('tls') })
  const gw = await gateway(t, config(pool('p', { default: 'true', ...PEM_TRUSTSTORE, 'http.route.default-proxy': `127.0.0.1:${port}` })))
  for (const target of [`http://127.0.0.1:${plain.port}/`, `https://localhost:${tlsUp.port}/`]) {
    const forwarded = await gw.forward('p', target)
    t.equal(forwarded.statusCode, 502, `${target}, reply.from: 502`)
    t.equal((forwarded.json() as { code?: string }).code, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE', `${target}, reply.from: FST_HTTP_POOLS_UPSTREAM_UNREACHABLE`)
    const err = await rejection(poolGet(gw.app, 'p', target))
    t.equal(err.code, 'ECONNREFUSED', `${target}, request(): ECONNREFUSED`)
  }
  t.equal(plain.hits() + tlsUp.hits(), 0, 'nothing reached the upstreams directly')
})

t.test('a proxy on the IPv6 loopback, written in brackets', { skip: ipv6Loopback() ? false : 'this machine has no IPv6 loopback' }, async (t) => {
  const proxy = await startTinyproxy(t, { host: '::1', basicAuth: { user: USER, pass: PASS } })
  const plain = await plainUpstream(t)
  const tlsUp = await httpsUpstream(t, serverTls(), (_req, res) => { res.end('tls') })
  const gw = await gateway(t, config(
    pool('url', { default: 'true', ...PEM_TRUSTSTORE, 'http.route.default-proxy': `http://${USER}:${PASS}@[::1]:${proxy.port}` }),
    pool('bare', { ...PEM_TRUSTSTORE, 'http.route.default-proxy': `${USER}:${PASS}@[::1]:${proxy.port}` })
  ))
  for (const id of ['url', 'bare']) {
    const forwarded = await gw.forward(id, `http://127.0.0.1:${plain.port}/v6`)
    t.equal(forwarded.statusCode, 200, `${id}, http target: 200 (${forwarded.text})`)
    t.match(bodyOf(forwarded).via, /tinyproxy/, `${id}, http target: through the proxy`)
    const tunnelled = await gw.forward(id, `https://localhost:${tlsUp.port}/`)
    t.equal(tunnelled.statusCode, 200, `${id}, https target: 200 (${tunnelled.text})`)
    t.equal(tunnelled.text, 'tls', `${id}, https target: through the tunnel`)
    t.equal(JSON.parse(JSON.stringify(gw.app.pools.get(id).settings))['http.route.default-proxy'], `http://***@[::1]:${proxy.port}`, `${id}: prints with its brackets, user-info masked`)
  }
})

function ipv6Loopback (): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.internal && i.family === 'IPv6' && i.address === '::1'))
}

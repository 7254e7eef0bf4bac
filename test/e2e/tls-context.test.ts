// Issue 12: a pool builds its TLS context (keys, certificates, CAs) once, at
// build time, and every new connection of the pool uses that one context,
// direct or inside a proxy's CONNECT tunnel. Given key/cert/ca instead,
// tls.connect builds a context per connection, parsing every CA again (with a
// keystore's trusted entries, Node's ~140 roots: tens of ms of CPU each).
//
// Seen from node:tls's public module, whose functions Node's own tls.connect
// and undici's connector look up at call time: tls.createSecureContext is
// wrapped to count the contexts built, tls.connect to see the context each
// connection was given. undici is not touched. The upstream requires a client
// certificate and records each connection, so every request must have made a
// new TLS connection that presented the keystore's certificate.
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import t from 'tap'
import {
  config, gateway, httpsUpstream, JKS_KEYSTORE, JKS_TRUSTSTORE, mutualTls, P12_KEYSTORE, peerFingerprint, pool, poolGet,
  PEM_TRUSTSTORE, TLS_ROOT
} from '../helpers/e2e.js'
import type { Tap } from '../helpers/tap.js'
import { startTinyproxy } from '../helpers/tinyproxy.js'

const CONNECTIONS = 6
const CLIENT = new X509Certificate(readFileSync(`${TLS_ROOT}/client.pem`)).fingerprint256

/** What node:tls did while it was observed: contexts built, and the context handed to each tls.connect. */
function observeTls (t: Tap): { built: () => number, connected: unknown[] } {
  const { connect, createSecureContext } = tls
  let built = 0
  const connected: unknown[] = []
  tls.createSecureContext = function (this: unknown, ...args: Parameters<typeof createSecureContext>) {
    built++
    return createSecureContext.apply(this, args)
  }
  tls.connect = function (this: unknown, ...args: unknown[]) {
    const options = args.find((a) => typeof a === 'object' && a !== null) as tls.ConnectionOptions | undefined
    connected.push(options?.secureContext)
    return (connect as (...a: unknown[]) => tls.TLSSocket).apply(this, args)
  } as typeof tls.connect
  t.teardown(() => {
    tls.createSecureContext = createSecureContext
    tls.connect = connect
  })
  return { built: () => built, connected }
}

t.test('each pool\'s new connections share the one TLS context built with the pool', async (t) => {
  // Each connection the upstream accepted, with the client certificate it saw.
  const seen = new Map<Socket, string>()
  const upstream = await httpsUpstream(t, mutualTls(), (req, res) => {
    seen.set(req.socket, peerFingerprint(req))
    res.end('ok')
  })
  const proxy = await startTinyproxy(t)
  const observed = observeTls(t)
  // keepalive.timeout 1: every request is sent with `connection: close`, so each one makes a new TLS connection.
  const newConnections = { 'keepalive.timeout': '1' }
  const pools = {
    // No truststore: Node's default CAs plus the JKS's trusted entry, the set that cost ~40 ms per connection.
    'trusted-entries': { default: 'true', ...JKS_KEYSTORE, ...newConnections },
    truststore: { ...P12_KEYSTORE, ...PEM_TRUSTSTORE, ...newConnections },
    tunnel: { ...JKS_KEYSTORE, ...JKS_TRUSTSTORE, 'http.route.default-proxy': proxy.address, ...newConnections }
  }
  const gw = await gateway(t, config(...Object.entries(pools).map(([id, attributes]) => pool(id, attributes))))
  t.equal(observed.built(), Object.keys(pools).length, 'registration built one context per pool')

  const target = `https://localhost:${upstream.port}/`
  const contexts = new Map<string, unknown>()
  for (const id of Object.keys(pools)) {
    const builtBefore = observed.built()
    const connectsBefore = observed.connected.length
    const socketsBefore = seen.size
    for (let i = 0; i < CONNECTIONS; i++) {
      // Both ways into the pool: a forwarded route and the client's request().
      const res = i % 2 === 0 ? await gw.forward(id, target) : await poolGet(gw.app, id, target)
      t.equal(res.statusCode, 200, `${id}, request ${i + 1}: 200 (${res.text})`)
    }
    const sockets = [...seen.values()].slice(socketsBefore)
    t.equal(sockets.length, CONNECTIONS, `${id}: the upstream accepted a new connection for each of the ${CONNECTIONS} requests`)
    t.ok(sockets.every((fp) => fp === CLIENT), `${id}: each presented the keystore's client certificate`)
    t.equal(observed.built() - builtBefore, 0, `${id}: no TLS context was built for any of those connections`)
    const used = observed.connected.slice(connectsBefore)
    t.equal(used.length, CONNECTIONS, `${id}: one TLS handshake per connection${id === 'tunnel' ? ', inside the tunnel' : ''}`)
    t.equal(new Set(used).size, 1, `${id}: every connection was given the same context`)
    t.not(used[0], undefined, `${id}: a context of the pool's own, not one tls.connect makes per connection`)
    contexts.set(id, used[0])
  }
  t.equal(new Set(contexts.values()).size, contexts.size, 'each pool has a context of its own')
  t.match(proxy.log(), new RegExp(`CONNECT localhost:${upstream.port}`), 'the tunnel pool went through the proxy')
})

// Issue 4, end to end: a pool's keystore is presented as the client
// certificate to an upstream that requires one (JKS, PKCS#12 and PEM
// keystores, with JKS or PEM truststores), through reply.from() on a route of
// that pool and through pools.get(id).request(); a pool without a keystore is
// refused; the upstream sees the SNI name of the URL's host.
import t from 'tap'
import {
  codesOf, config, gateway, httpsUpstream, JKS_KEYSTORE, JKS_TRUSTSTORE, mutualTls, P12_KEYSTORE, PEM_KEYSTORE,
  PEM_TRUSTSTORE, peerCn, pool, poolGet, rejection, serverTls, servername
} from '../helpers/e2e.js'

// What the upstream saw of the TLS connection, as its response body.
interface Peer { cn: string, sni: string }

t.test('client certificate upstream', async (t) => {
  // requestCert + rejectUnauthorized: a handshake without a certificate signed by the test CA fails.
  const upstream = await httpsUpstream(t, mutualTls(), (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ cn: peerCn(req), sni: servername(req) } satisfies Peer))
  })
  const gw = await gateway(t, config(
    pool('jks', { default: 'true', ...JKS_KEYSTORE, ...JKS_TRUSTSTORE }),
    pool('p12', { ...P12_KEYSTORE, ...PEM_TRUSTSTORE }),
    pool('pem', { ...PEM_KEYSTORE, ...PEM_TRUSTSTORE }),
    pool('pem-jks-trust', { ...PEM_KEYSTORE, ...JKS_TRUSTSTORE }),
    // No truststore: Node's CAs plus the JKS's trusted "ca" entry verify the server.
    pool('jks-alone', { ...JKS_KEYSTORE }),
    pool('no-keystore', { ...JKS_TRUSTSTORE })
  ))

  const withKeystore = ['jks', 'p12', 'pem', 'pem-jks-trust', 'jks-alone']
  for (const host of ['localhost', '127.0.0.1']) {
    const target = `https://${host}:${upstream.port}/`
    for (const id of withKeystore) {
      const forwarded = await gw.forward(id, target)
      t.equal(forwarded.statusCode, 200, `${id} → ${host}, reply.from: 200 (${forwarded.text})`)
      t.equal(forwarded.statusCode === 200 ? (forwarded.json() as Peer).cn : undefined, 'fhp-client', `${id} → ${host}, reply.from: the upstream verified the client certificate fhp-client`)

      const direct = await poolGet(gw.app, id, target)
      t.equal(direct.statusCode, 200, `${id} → ${host}, request(): 200`)
      t.equal((direct.json() as Peer).cn, 'fhp-client', `${id} → ${host}, request(): the upstream verified the client certificate fhp-client`)
    }
  }

  t.test('a pool without a keystore is refused by the upstream', async (t) => {
    const before = upstream.hits()
    const target = `https://localhost:${upstream.port}/`
    const forwarded = await gw.forward('no-keystore', target)
    t.equal(forwarded.statusCode, 502, 'reply.from: 502')
    const code = (forwarded.json() as { code?: string }).code
    // TLS 1.3: the client's handshake completes before the server checks the
    // certificate; the server's alert then comes before undici's "other side
    // closed", and the pool reports the alert (issue 15, item 9).
    t.equal(code, 'FST_HTTP_POOLS_UPSTREAM_TLS', 'reply.from: the TLS failure')

    const err = await rejection(poolGet(gw.app, 'no-keystore', target))
    t.comment(`request() rejected with: ${codesOf(err).join(' <- ')}: ${err.message}`)
    t.ok(err instanceof Error, 'request() rejects')
    t.equal(upstream.hits(), before, 'no request reached the upstream handler')
    t.ok(upstream.tlsErrors.some((c) => /CERTIFICATE/.test(c)), `the upstream aborted the handshake for want of a client certificate (${upstream.tlsErrors.join(', ')})`)
  })
})

t.test('SNI: the upstream sees the host name of the URL', async (t) => {
  const upstream = await httpsUpstream(t, serverTls(), (req, res) => { res.end(servername(req)) })
  const gw = await gateway(t, config(pool('p', { default: 'true', ...PEM_TRUSTSTORE })))

  const byName = `https://localhost:${upstream.port}/`
  t.equal((await poolGet(gw.app, 'p', byName)).text, 'localhost', 'request() by host name: servername localhost')
  const forwarded = await gw.forward('p', byName)
  t.equal(forwarded.statusCode, 200, 'reply.from by host name: 200')
  t.equal(forwarded.text, 'localhost', 'reply.from by host name: servername localhost')

  // RFC 6066: an IP literal is not sent as a server name (127.0.0.1 is in the certificate's SAN).
  const byIp = `https://127.0.0.1:${upstream.port}/`
  t.equal((await poolGet(gw.app, 'p', byIp)).text, '', 'request() by IP address: no servername')
  t.equal((await gw.forward('p', byIp)).text, '', 'reply.from by IP address: no servername')
})

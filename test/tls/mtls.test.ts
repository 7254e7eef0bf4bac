// The material works on the wire: a real HTTPS server that requires a client
// certificate signed by the test CA accepts the key and chain from a JKS, a
// PKCS#12 and a PEM keystore, and the client verifies the server against ca.
import { once } from 'node:events'
import * as https from 'node:https'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'
import t from 'tap'
import { keystore, load, shared, type Attributes } from './helpers.js'

interface Outcome {
  /** The client verified the server. */
  authorized: boolean
  authorizationError: string | undefined
  /** What the server saw: the client certificate's CN, when it verified it. */
  peer: string | undefined
  /** The body of GET / (the CN the server's handler saw), or the connection error. */
  response: string
}

async function server (): Promise<{ port: number, peers: string[], close: () => Promise<void> }> {
  const peers: string[] = []
  const srv = https.createServer({
    key: shared('server.key'),
    cert: shared('server.pem'),
    ca: [shared('ca.pem')],
    requestCert: true,
    rejectUnauthorized: true
  }, (req, res) => {
    const socket = req.socket as tls.TLSSocket
    res.end(`hello ${String(socket.getPeerCertificate().subject?.CN)}`)
  })
  srv.on('secureConnection', (s: tls.TLSSocket) => { if (s.authorized) peers.push(String(s.getPeerCertificate().subject?.CN)) })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  return {
    port: (srv.address() as AddressInfo).port,
    peers,
    close: async () => { srv.closeAllConnections(); await new Promise<void>((resolve) => srv.close(() => resolve())) }
  }
}

/** Connects with the material (and rejectUnauthorized: false, so a server the material does not trust is reported, not thrown). */
async function exchange (port: number, attributes: Attributes): Promise<Outcome> {
  const material = load(attributes)
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...material, rejectUnauthorized: false })
  await once(socket, 'secureConnect')
  const authorized = socket.authorized
  // An Error (typed so) or a code string, depending on the Node version; null when authorized.
  const e = socket.authorizationError as unknown as (Error & { code?: string }) | string | null | undefined
  const authorizationError = e === null || e === undefined ? undefined : typeof e === 'string' ? e : e.code ?? e.message
  socket.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  let response = ''
  try {
    for await (const chunk of socket) response += String(chunk)
  } catch (err) {
    response = `error: ${(err as Error).message}`
  }
  return { authorized, authorizationError, peer: /hello (\S+)/.exec(response)?.[1], response }
}

t.test('mutual TLS with each keystore format', async (t) => {
  const srv = await server()
  t.teardown(srv.close)
  const cases: [string, Attributes][] = [
    // No truststore: Node's CAs plus the JKS's "ca" trusted entry verify the server.
    ['JKS keystore alone', keystore('client.jks', 'password', 'keypass')],
    ['JKS keystore (key password = store password)', keystore('client-samepass.jks', 'password', 'password')],
    ['JKS keystore + JKS truststore', { ...keystore('client.jks', 'password', 'keypass'), 'truststore-filename': 'truststore.jks', 'truststore-password': 'password' }],
    ['PKCS#12 keystore + PKCS#12 truststore', { ...keystore('client.p12', 'password', 'password'), 'truststore-filename': 'truststore.p12', 'truststore-password': 'password' }],
    ['PEM keystore + PEM truststore', { ...keystore('client-combined.pem', 'unused', 'keypass'), 'truststore-filename': 'truststore.pem' }]
  ]
  for (const [label, attributes] of cases) {
    const o = await exchange(srv.port, attributes)
    t.equal(o.authorized, true, `${label}: the client verifies the server (${o.authorizationError ?? 'ok'})`)
    t.equal(o.peer, 'fhp-client', `${label}: the server verified the client certificate`)
  }
  t.equal(srv.peers.filter((p) => p === 'fhp-client').length, cases.length, 'the server authorized every client')
})

t.test('with a truststore, only its certificates are trusted', async (t) => {
  const srv = await server()
  t.teardown(srv.close)
  const o = await exchange(srv.port, { ...keystore('client.jks', 'password', 'keypass'), 'truststore-filename': 'other-truststore.jks', 'truststore-password': 'password' })
  t.equal(o.authorized, false, 'the test CA is not trusted any more, though the keystore has it as an entry')
  // The server sends the test CA along (OpenSSL completes its chain from `ca`), hence the second code.
  t.match(o.authorizationError, /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/)
})

t.test('without truststore or trusted entries, Node\'s defaults do not trust the test CA', async (t) => {
  const srv = await server()
  t.teardown(srv.close)
  const o = await exchange(srv.port, keystore('client.p12', 'password', 'password'))
  t.equal(o.authorized, false)
  // The server sends the test CA along (OpenSSL completes its chain from `ca`), hence the second code.
  t.match(o.authorizationError, /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/)
  t.equal(o.peer, 'fhp-client', 'the client certificate was still accepted by the server')
})

t.test('the server refuses an expired client certificate (the case the warning is about)', async (t) => {
  const srv = await server()
  t.teardown(srv.close)
  const dir = t.testdir({ 'expired.pem': shared('client-expired.pem') + shared('client-expired.key') })
  const expired = load(keystore('expired.pem', 'x', 'x'), dir)
  t.equal(expired.warnings.length, 1)
  const socket = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ...expired, ca: [shared('ca.pem')] })
  socket.on('secureConnect', () => socket.end('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'))
  let body = ''
  const error = await new Promise<Error | undefined>((resolve) => {
    socket.on('data', (c) => { body += String(c) })
    socket.on('error', resolve)
    socket.on('close', () => resolve(undefined))
  })
  t.notMatch(body, /hello fhp-client/, 'no response for the expired certificate')
  t.match(String(error?.message ?? 'closed'), /certificate expired|closed|ECONNRESET|socket hang up/)
  t.equal(srv.peers.length, 0)
})

// Issue 4, end to end: pools verify upstream certificates and host names
// (stricter than Repose); x:tls.insecure="true" turns both checks off for its
// own pool only, with one warning naming the pool at registration.
import t from 'tap'
import { codesOf, config, gateway, httpsUpstream, JKS_TRUSTSTORE, pool, poolGet, rejection, serverTls } from '../helpers/e2e.js'

const INSECURE_WARNING = /x:tls\.insecure/

t.test('certificate and host name verification', async (t) => {
  // Signed by other-ca, which no pool trusts.
  const unknownCa = await httpsUpstream(t, serverTls('server-unknown-ca'), (_req, res) => { res.end('unknown-ca') })
  // Signed by the test CA, but only for other.example.
  const otherHost = await httpsUpstream(t, serverTls('server-other-host'), (_req, res) => { res.end('other-host') })
  const gw = await gateway(t, config(
    pool('strict', { default: 'true', ...JKS_TRUSTSTORE }),
    pool('insecure', { 'x:tls.insecure': 'true' }),
    pool('plain')
  ))
  const warnings = (): typeof gw.logs => gw.logs.filter((l) => INSECURE_WARNING.test(l.msg ?? ''))

  t.test('x:tls.insecure: one warning naming the pool, at registration', async (t) => {
    // Looked at before any request has been made (and again after the others ran, below).
    const lines = warnings()
    t.equal(lines.length, 1, 'exactly one warning')
    t.equal(lines[0]?.level, 40, 'at level warn')
    t.equal(lines[0]?.pool, 'insecure', 'the log line carries the pool id')
    t.match(lines[0]?.msg, /"insecure"/, 'the message names the pool')
  })

  const unknownUrl = `https://localhost:${unknownCa.port}/`
  const otherUrl = `https://localhost:${otherHost.port}/`

  t.test('an unknown CA is refused, even with a truststore', async (t) => {
    for (const id of ['strict', 'plain']) {
      const forwarded = await gw.forward(id, unknownUrl)
      t.equal(forwarded.statusCode, 502, `${id}, reply.from: 502`)
      t.equal((forwarded.json() as { code?: string }).code, 'FST_HTTP_POOLS_UPSTREAM_TLS', `${id}, reply.from: code FST_HTTP_POOLS_UPSTREAM_TLS`)
      const err = await rejection(poolGet(gw.app, id, unknownUrl))
      t.match(codesOf(err)[0], /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)$/, `${id}, request(): rejects with a certificate verification error (${err.message})`)
    }
    t.equal(unknownCa.hits(), 0, 'no request reached the upstream')
  })

  t.test('a certificate for another host name is refused', async (t) => {
    for (const id of ['strict', 'plain']) {
      const forwarded = await gw.forward(id, otherUrl)
      // 'plain' trusts Node's CAs only, so the chain fails first; 'strict' trusts the test CA and fails on the name.
      t.equal(forwarded.statusCode, 502, `${id}, reply.from: 502`)
      const err = await rejection(poolGet(gw.app, id, otherUrl))
      if (id === 'strict') {
        t.equal((forwarded.json() as { code?: string }).code, 'FST_HTTP_POOLS_UPSTREAM_TLS', 'strict, reply.from: code FST_HTTP_POOLS_UPSTREAM_TLS')
        t.equal(codesOf(err)[0], 'ERR_TLS_CERT_ALTNAME_INVALID', `strict, request(): host name mismatch (${err.message})`)
      }
    }
    t.equal(otherHost.hits(), 0, 'no request reached the upstream')
  })

  t.test('x:tls.insecure="true" accepts both', async (t) => {
    for (const [url, body] of [[unknownUrl, 'unknown-ca'], [otherUrl, 'other-host']] as const) {
      const forwarded = await gw.forward('insecure', url)
      t.equal(forwarded.statusCode, 200, `${body}, reply.from: 200`)
      t.equal(forwarded.text, body, `${body}, reply.from: the upstream's body`)
      const direct = await poolGet(gw.app, 'insecure', url)
      t.equal(direct.statusCode, 200, `${body}, request(): 200`)
      t.equal(direct.text, body, `${body}, request(): the upstream's body`)
    }
  })

  t.test('the insecure pool leaves the other pools of the app verifying', async (t) => {
    // After the insecure pool has connected to both servers (same origins, same host names).
    for (const id of ['strict', 'plain']) {
      for (const url of [unknownUrl, otherUrl]) {
        t.equal((await gw.forward(id, url)).statusCode, 502, `${id} → ${url}, reply.from: still 502`)
        await rejection(poolGet(gw.app, id, url))
        t.pass(`${id} → ${url}, request(): still rejects`)
      }
    }
    t.equal(warnings().length, 1, 'still exactly one x:tls.insecure warning after all the requests')
  })
})

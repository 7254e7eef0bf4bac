// Issue 4, end to end: x:http2="true" offers HTTP/2 by ALPN to https
// origins, through request() and reply.from(); pools without it speak
// HTTP/1.1; an origin that only speaks HTTP/1.1 still works.
import t from 'tap'
import { config, gateway, http2Upstream, httpsUpstream, PEM_TRUSTSTORE, pool, poolGet, serverTls } from '../helpers/e2e.js'

t.test('x:http2', async (t) => {
  // Answers with the HTTP version it was spoken to in, and a header to see that headers are forwarded too.
  const both = await http2Upstream(t, { ...serverTls(), allowHTTP1: true }, (req, res) => {
    res.setHeader('x-version', req.httpVersion)
    res.end(req.httpVersion)
  })
  const h1only = await httpsUpstream(t, serverTls(), (req, res) => {
    res.setHeader('x-version', req.httpVersion)
    res.end(req.httpVersion)
  })
  const gw = await gateway(t, config(
    pool('h2', { default: 'true', ...PEM_TRUSTSTORE, 'x:http2': 'true' }),
    pool('h1', { ...PEM_TRUSTSTORE })
  ))
  const bothUrl = `https://localhost:${both.port}/`
  const h1Url = `https://localhost:${h1only.port}/`

  t.test('a pool with x:http2 speaks HTTP/2 to an origin that offers it', async (t) => {
    const direct = await poolGet(gw.app, 'h2', bothUrl)
    t.equal(direct.statusCode, 200, 'request(): 200')
    t.equal(direct.text, '2.0', 'request(): HTTP/2')
    const forwarded = await gw.forward('h2', bothUrl)
    t.equal(forwarded.statusCode, 200, 'reply.from: 200')
    t.equal(forwarded.text, '2.0', 'reply.from: HTTP/2, body forwarded')
    t.equal(forwarded.headers['x-version'], '2.0', 'reply.from: response headers forwarded')
    // Several requests in parallel share the HTTP/2 connection's streams.
    const many = await Promise.all(Array.from({ length: 5 }, async () => await gw.forward('h2', bothUrl)))
    t.same(many.map((r) => [r.statusCode, r.text]), Array(5).fill([200, '2.0']), 'parallel forwards: 200, HTTP/2')
  })

  t.test('a pool without x:http2 speaks HTTP/1.1', async (t) => {
    t.equal((await poolGet(gw.app, 'h1', bothUrl)).text, '1.1', 'request(): HTTP/1.1')
    const forwarded = await gw.forward('h1', bothUrl)
    t.equal(forwarded.statusCode, 200, 'reply.from: 200')
    t.equal(forwarded.text, '1.1', 'reply.from: HTTP/1.1')
  })

  t.test('x:http2 falls back to HTTP/1.1 when the origin only speaks it', async (t) => {
    const direct = await poolGet(gw.app, 'h2', h1Url)
    t.equal(direct.statusCode, 200, 'request(): 200')
    t.equal(direct.text, '1.1', 'request(): HTTP/1.1')
    const forwarded = await gw.forward('h2', h1Url)
    t.equal(forwarded.statusCode, 200, 'reply.from: 200')
    t.equal(forwarded.text, '1.1', 'reply.from: HTTP/1.1')
  })
})

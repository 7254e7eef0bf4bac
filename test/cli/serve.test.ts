// SPEC "Package" (serve), each behaviour on the built command run as a child
// process: the bundled defaults, every method and body forwarded unchanged
// and streamed, --route through its pool, one log line per pool and route,
// request targets that are not paths (issue 14, item 8), exit 1 with the
// reason when it cannot start, exit 2 naming the option for a bad command line.
import { once } from 'node:events'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { cli, cliBuilt, startServe } from '../helpers/cli.js'
import { BOUND_MS, get, upstream, type Tap } from '../helpers/loopback.js'
import { listenHttp } from '../helpers/net.js'
import { config, pool } from '../helpers/xml.js'

t.setTimeout(600_000)
const skip = cliBuilt ? false : 'dist/ is not built (npm test builds it first)'

interface Mirror { origin: string, seen: Array<{ method: string, url: string, headers: IncomingMessage['headers'] }>, firstChunk: Promise<void> }

/** An upstream that answers with the very bytes it received, and says in headers how they came. */
async function mirror (t: Tap): Promise<Mirror> {
  const seen: Mirror['seen'] = []
  let chunkArrived: () => void = () => {}
  const firstChunk = new Promise<void>((resolve) => { chunkArrived = resolve })
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers })
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c); chunkArrived() })
    req.on('end', () => {
      res.writeHead(200, {
        'x-method': req.method!,
        'x-url': req.url!,
        'x-content-type': req.headers['content-type'] ?? '(none)',
        'x-transfer-encoding': req.headers['transfer-encoding'] ?? '(none)',
        'x-pool': req.headers['x-pool'] ?? '(none)'
      })
      res.end(Buffer.concat(chunks))
    })
  })
  const port = await listenHttp(t, server)
  return { origin: `http://127.0.0.1:${port}`, seen, firstChunk }
}

/** GET with `target` as the request line's target, verbatim (node:http sends any path it is given). */
async function getTarget (url: string, target: string): Promise<{ statusCode: number, body: string }> {
  const { hostname, port } = new URL(url)
  const req = httpRequest({ hostname, port, path: target, agent: false, timeout: BOUND_MS })
  req.on('timeout', () => req.destroy(new Error(`no answer to GET ${target}`)))
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  let body = ''
  for await (const c of res) body += String(c)
  return { statusCode: res.statusCode!, body }
}

t.test('serve alone: the bundled config in front of the bundled demo origin, one log line per pool and route', { skip }, async (t) => {
  const gw = await startServe(t)
  const res = await get(`${gw.url}/hello?x=1`)
  t.equal(res.statusCode, 200)
  t.match(res.json(), { origin: 'fastify-http-pools demo', method: 'GET', url: '/hello?x=1' })
  for (const id of ['default', 'banana']) {
    t.equal(gw.lines.filter((l) => l.pool === id && /^pool "/.test(l.msg ?? '')).length, 1, `one line for pool ${id}`)
  }
  t.match(gw.lines.filter((l) => /^route /.test(l.msg ?? '')), [{ route: '/*', pool: 'default', msg: /bundled demo origin/ }], 'one line for the one route')
  gw.child.kill('SIGTERM')
  t.equal(await gw.exited, 0, 'SIGTERM: a clean exit')
})

t.test('every method and body goes upstream unchanged, whatever the content type, and streamed', { skip }, async (t) => {
  const origin = await mirror(t)
  const fruit = await mirror(t)
  const stream = await mirror(t)
  const gw = await startServe(t, '--origin', origin.origin, '--route', `/fruit=banana@${fruit.origin}`, '--route', `/stream=default@${stream.origin}`, '--metrics-port', '0')

  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const cases: Array<[string, string | undefined, Buffer]> = [
    ['POST', 'application/octet-stream', binary],
    ['PUT', 'application/x-www-form-urlencoded', Buffer.from('a=1&b=%20two&a=3')],
    ['PATCH', 'application/xml; charset=utf-8', Buffer.from('<?xml version="1.0"?><a  b="1">é</a>')],
    ['POST', 'application/json', Buffer.from('{ "kept":  "as sent" ,"n":1.50 }')],
    ['DELETE', 'text/plain', Buffer.from('gone')],
    ['OPTIONS', 'image/png', binary],
    ['POST', 'multipart/form-data; boundary=x', Buffer.from('--x\r\ncontent-disposition: form-data; name="f"\r\n\r\nv\r\n--x--\r\n')],
    ['POST', undefined, Buffer.from('no content type')]
  ]
  for (const [method, type, body] of cases) {
    const what = `${method} ${type ?? '(no content-type)'}`
    const res = await sendBytes(`${gw.url}/any/path?q=${method}`, method, type, body)
    t.equal(res.statusCode, 200, `${what}: 200`)
    t.equal(res.headers['x-method'], method, `${what}: method kept`)
    t.equal(res.headers['x-url'], `/any/path?q=${method}`, `${what}: path and query kept`)
    t.equal(res.headers['x-content-type'], type ?? '(none)', `${what}: content type kept`)
    t.ok(res.body.equals(body), `${what}: the same ${body.length} bytes`)
  }
  for (const method of ['GET', 'HEAD']) {
    const res = await get(`${gw.url}/fruit/apple`, { method: method as 'GET' })
    t.equal(res.statusCode, 200, `${method} through the route`)
    t.equal(res.headers['x-pool'], 'banana', `${method}: carried by pool banana (its static header)`)
  }
  t.same(fruit.seen.map((s) => `${s.method} ${s.url}`), ['GET /fruit/apple', 'HEAD /fruit/apple'], 'the route went to its own upstream')
  t.equal(origin.seen.filter((s) => s.url.startsWith('/fruit')).length, 0)
  t.equal(origin.seen[0]!.headers['x-pool'], undefined, 'the default pool sends no banana header')

  // Streamed: the upstream gets the first chunk before the client sends the second.
  const streamed = httpRequest(`${gw.url}/stream`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } })
  streamed.write('first,')
  await Promise.race([stream.firstChunk, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('the first chunk never reached the upstream: the body was buffered')), BOUND_MS))])
  streamed.end('second')
  const [response] = await once(streamed, 'response') as [IncomingMessage]
  let echoed = ''
  for await (const c of response) echoed += String(c)
  t.equal(echoed, 'first,second', 'the streamed body arrived whole')
  t.equal(response.headers['x-transfer-encoding'], 'chunked', 'and streamed on, chunked')
})

/** Sends `body` with a content-length and reads the response's bytes. */
async function sendBytes (url: string, method: string, type: string | undefined, body: Buffer): Promise<{ statusCode: number, headers: IncomingMessage['headers'], body: Buffer }> {
  const req = httpRequest(url, { method, headers: { ...(type === undefined ? {} : { 'content-type': type }), 'content-length': body.length } })
  req.end(body)
  const [res] = await once(req, 'response') as [IncomingMessage]
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  return { statusCode: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }
}

t.test('a request target that is not a path gets 400 and goes nowhere; URLs are built as URLs', { skip }, async (t) => {
  const origin = await mirror(t)
  const gw = await startServe(t, '--origin', origin.origin)
  for (const target of ['abc://x/', 'http://127.0.0.1:1/', '*', '/\\evil.example/x']) {
    const res = await getTarget(gw.url, target)
    t.equal(res.statusCode, 400, `${target}: 400`)
    t.equal(JSON.parse(res.body).code, 'FST_HTTP_POOLS_BAD_TARGET', `${target}: with its code`)
  }
  t.same(origin.seen, [], 'none reached the origin (nor any other host)')
  const res = await getTarget(gw.url, '//other.example/x?y=1')
  t.equal(res.statusCode, 200)
  t.same(origin.seen.map((s) => s.url), ['//other.example/x?y=1'], 'a path starting with // stays a path on the origin')
})

t.test('a gateway that cannot start exits 1 with the reason, even with the demo origin running', { skip }, async (t) => {
  const dir = t.testdir({})
  const bad = join(dir, 'bad.cfg.xml')
  writeFileSync(bad, config(pool('a', { default: 'true', 'cache.ttl': 'soon' })))
  const r1 = await cli('serve', '--config', bad, '--port', '0')
  t.equal(r1.code, 1, 'invalid config: exit 1')
  t.match(r1.stderr, `cannot start: invalid config ${bad}`)
  t.match(r1.stderr, `${bad}:2: pool "a": cache.ttl: `, 'every problem as FILE:LINE: pool "ID": ATTRIBUTE: MESSAGE')

  const r2 = await cli('serve', '--config', join(dir, 'missing.cfg.xml'), '--port', '0')
  t.equal(r2.code, 1, 'missing config: exit 1')
  t.match(r2.stderr, /cannot read the config file/)

  const r3 = await cli('serve', '--route', '/fruit=kiwi', '--port', '0')
  t.equal(r3.code, 1, 'unknown pool in --route: exit 1')
  t.match(r3.stderr, '--route /fruit=kiwi: no pool "kiwi"')
  t.match(r3.stderr, 'pools: "default", "banana"')

  const taken = createNetServer()
  taken.listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => { taken.close() })
  const port = (taken.address() as { port: number }).port
  const r4 = await cli('serve', '--port', String(port), '--metrics-port', '0')
  t.equal(r4.code, 1, 'port in use: exit 1')
  t.match(r4.stderr, `port ${port} on 127.0.0.1 is in use`)
  const r5 = await cli('serve', '--port', '0', '--metrics-port', String(port))
  t.equal(r5.code, 1, 'metrics port in use: exit 1')
  t.match(r5.stderr, `--metrics-port ${port} on 127.0.0.1 is in use`)

  for (const r of [r1, r2, r3, r4, r5]) t.notMatch(r.stderr, /^\s+at /m, 'no stack trace')
})

t.test('a bad command line exits 2, naming the option and the problem', { skip }, async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /unknown option --bogus/],
    [['--port'], /--port needs a value/],
    [['--port', 'abc'], /--port "abc" is not a port number/],
    [['--port', '70000'], /--port "70000" is not a port number/],
    [['--metrics-port', '-1'], /--metrics-port/],
    [['--metrics-port', '70000'], /--metrics-port "70000" is not a port number/],
    [['--port', '3000', '--metrics-port', '3000'], /--metrics-port 3000 is --port too/],
    [['--origin', 'not a url'], /--origin "not a url" is not a URL/],
    [['--origin', 'ftp://127.0.0.1'], /--origin "ftp:\/\/127.0.0.1": the scheme must be http or https/],
    [['--origin', 'http://127.0.0.1:8080/base'], /--origin .*remove the path/],
    [['--route', 'fruit=banana'], /--route "fruit=banana" is not PREFIX=POOL\[@UPSTREAM\]/],
    [['--route', '/fruit=banana@nope'], /--route "nope" is not a URL/],
    [['--route', '/a=banana', '--route', '/a/=default'], /--route prefix "\/a" is given twice/],
    [['extra'], /extra/]
  ]
  for (const [args, message] of cases) {
    const r = await cli('serve', ...args)
    t.equal(r.code, 2, `serve ${args.join(' ')}: exit 2`)
    t.match(r.stderr, message, `serve ${args.join(' ')}: ${message}`)
    t.match(r.stderr, /serve --help/, 'points to the help')
    t.equal(r.stdout, '', 'nothing on stdout')
  }
})

t.test('--help on the command and each subcommand prints its usage on stdout and exits 0; --version prints the version', { skip }, async (t) => {
  const { version } = require('../../package.json') as { version: string }
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await cli(...args)
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`)
    t.equal(r.stderr, '')
    t.match(r.stdout, /^Usage: fastify-http-pools check FILE/)
    t.match(r.stdout, /--host H/)
    t.match(r.stdout, /--metrics-port N/)
    t.match(r.stdout, /--version/)
  }
  const serve = await cli('serve', '--help')
  t.equal(serve.code, 0, 'serve --help: exit 0')
  t.equal(serve.stderr, '')
  for (const option of ['--config FILE', '--origin URL', '--port N', '--host H', '--metrics-port N', '--route PREFIX=POOL[@UPSTREAM]']) t.match(serve.stdout, option, `serve --help documents ${option}`)
  t.match(serve.stdout, /--metrics-port N +port of the Prometheus \/metrics endpoint/, '--metrics-port is documented')
  const check = await cli('check', '--help')
  t.equal(check.code, 0, 'check --help: exit 0 (not a file named --help)')
  t.match(check.stdout, /^Usage: fastify-http-pools check FILE/)
  t.equal(check.stderr, '')
  const bad = await cli('check', '--bogus', 'x.xml')
  t.equal(bad.code, 2, 'check with an unknown option: exit 2')
  t.match(bad.stderr, /--bogus/)
  for (const flag of ['--version', '-v']) {
    const r = await cli(flag)
    t.equal(r.code, 0)
    t.equal(r.stdout.trim(), version, `${flag} prints ${version}`)
  }
})

t.test('--metrics-port: /metrics serves the pools\' Prometheus metrics, logged at start', { skip }, async (t) => {
  const origin = await upstream(t)
  const gw = await startServe(t, '--origin', origin.origin, '--metrics-port', '0', '--host', '127.0.0.1')
  const logged = gw.lines.map((l) => /^Prometheus metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)$/.exec(l.msg ?? '')?.[1]).filter((u) => u !== undefined)
  t.equal(logged.length, 1, 'one line says where the metrics are')
  t.not(new URL(logged[0]!).port, new URL(gw.url).port, 'on a port of its own')
  t.equal((await get(`${gw.url}/x`)).statusCode, 200)
  const metrics = await get(logged[0]!)
  t.equal(metrics.statusCode, 200)
  t.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(metrics.text, /^http_client_pool_upstream_requests_total\{pool="default"\} 1$/m, 'the request it forwarded')
  t.match(metrics.text, /^http_client_pool_connections_max\{pool="banana"\} \d+$/m, 'every pool')
  t.equal((await get(logged[0]!.replace(/metrics$/, 'other'))).statusCode, 404, 'nothing else there')
})

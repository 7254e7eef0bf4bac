// Valid configs load with the right values: the full Repose example, SPEC
// defaults, extensions under any prefix, proxies, character references.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { inspect } from 'node:util'
import t from 'tap'
import { loadConfigFile } from '../../lib/config/load.js'
import { parseConfig } from '../../lib/config/parse.js'
import { parseProxy } from '../../lib/config/values.js'
import { DEFAULTS, EXT_NS, FIXTURES, REPOSE_NS, onePool, parseError, wrap } from '../helpers/config.js'

const FULL = join(FIXTURES, 'repose-full.cfg.xml')

// SPEC.md "The XML file" and "Extensions": every default, written out here so
// that a wrong default in the schema fails a test.

/** Own enumerable properties, headers as plain objects: what a deep comparison should see. */
function plain (settings: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...settings }
  out.headers = (out.headers as { name: string, value: string }[]).map((h) => ({ name: h.name, value: h.value }))
  return out
}

t.test('the full Repose example config loads with every value as written', async (t) => {
  const xml = readFileSync(FULL, 'utf8')
  t.notMatch(xml, /\(\d+\)/, 'the callout markers of the documentation are gone')
  const { defaultId, pools } = parseConfig(xml, { configRoot: FIXTURES })
  t.equal(defaultId, 'default')
  t.same(pools.map((p) => p.id), ['default', 'banana'], 'pools in file order')
  const [def, banana] = pools
  t.strictSame(plain(def!), {
    // The example writes every Repose attribute; those not listed here equal the defaults.
    ...DEFAULTS,
    id: 'default',
    default: true,
    'http.route.default-proxy': 'http://example.com:80',
    'keystore-filename': 'client.jks',
    'keystore-password': 'password',
    'key-password': 'password',
    'truststore-filename': 'servers.jks',
    'truststore-password': 'password',
    headers: [{ name: 'foo', value: 'bar' }]
  })
  t.equal(def!['http.route.default-proxy'], 'http://example.com:80')
  t.equal(def!.headers[0]!.value, 'bar', 'the real header value is there for the pool to send')
  t.strictSame(plain(banana!), { ...DEFAULTS, id: 'banana' }, 'banana has every default')
})

t.test('loadConfigFile resolves the keystores next to the file, whatever the working directory', async (t) => {
  const cwd = process.cwd()
  t.teardown(() => process.chdir(cwd))
  process.chdir(t.testdir({}))
  const { defaultId, pools } = await loadConfigFile(FULL)
  t.equal(defaultId, 'default')
  t.equal(pools[0]!['keystore-filename'], 'client.jks')
  t.equal(pools[0]!['truststore-filename'], 'servers.jks')
})

t.test('a minimal pool gets every SPEC default, extensions included', async (t) => {
  const { defaultId, pools } = parseConfig(`<http-connection-pools xmlns="${REPOSE_NS}"><pool id="default" default="true"/></http-connection-pools>`)
  t.equal(defaultId, 'default')
  t.equal(pools.length, 1)
  t.strictSame(plain(pools[0]!), { ...DEFAULTS, id: 'default', default: true })
  t.equal(pools[0]!['http.conn-manager.max-total'], 400)
  t.equal(pools[0]!['retry.max-attempts'], 3)
  t.equal(pools[0]!.default, true)
})

t.test('settings are frozen, deeply', async (t) => {
  const { pools } = parseConfig(onePool('', '<headers><header name="X-A" value="1"/></headers>'))
  const s = pools[0]!
  t.ok(Object.isFrozen(s), 'settings')
  t.ok(Object.isFrozen(s.headers), 'headers')
  t.ok(Object.isFrozen(s.headers[0]), 'one header')
  t.ok(Object.isFrozen(s['retry.methods']), 'retry.methods')
  t.ok(Object.isFrozen(s['retry.statuses']), 'retry.statuses')
  t.throws(() => { (s as unknown as Record<string, unknown>)['cache.ttl'] = 1 }, TypeError)
  t.equal(s['cache.ttl'], 500)
})

t.test('pools come in file order and defaultId is the default pool, wherever it is', async (t) => {
  const { defaultId, pools } = parseConfig(wrap('<pool id="c"/>\n<pool id="a"/>\n<pool id="b" default="true"/>\n<pool id="d"/>'))
  t.equal(defaultId, 'b')
  t.same(pools.map((p) => p.id), ['c', 'a', 'b', 'd'])
  t.same(pools.map((p) => p.default), [false, false, true, false])
})

const EXT_ATTRIBUTES = (p: string): string => [
  `${p}:retry.max-attempts="5"`,
  `${p}:retry.methods="GET,POST"`,
  `${p}:retry.statuses="503"`,
  `${p}:retry.base-delay="50"`,
  `${p}:retry.max-delay="2000"`,
  `${p}:queue.timeout="1500"`,
  `${p}:request.timeout="9000"`,
  `${p}:circuit-breaker.threshold="4"`,
  `${p}:circuit-breaker.reset="7000"`,
  `${p}:connection.max-lifetime="60000"`,
  `${p}:http2="true"`,
  `${p}:tls.insecure="1"`
].join('\n      ')

const EXT_VALUES = {
  'retry.max-attempts': 5,
  'retry.methods': ['GET', 'POST'],
  'retry.statuses': [503],
  'retry.base-delay': 50,
  'retry.max-delay': 2000,
  'queue.timeout': 1500,
  'request.timeout': 9000,
  'circuit-breaker.threshold': 4,
  'circuit-breaker.reset': 7000,
  'connection.max-lifetime': 60000,
  http2: true,
  'tls.insecure': true
}

t.test('every extension attribute, with the x: prefix', async (t) => {
  const { pools } = parseConfig(wrap(`<pool id="a" default="true"\n      ${EXT_ATTRIBUTES('x')}/>\n<pool id="b"/>`))
  t.strictSame(plain(pools[0]!), { ...DEFAULTS, id: 'a', default: true, ...EXT_VALUES })
  t.strictSame(plain(pools[1]!), { ...DEFAULTS, id: 'b' }, 'another pool keeps the defaults')
})

t.test('the extension namespace works under any prefix', async (t) => {
  const xml = `<http-connection-pools xmlns="${REPOSE_NS}" xmlns:ext="${EXT_NS}">\n` +
    `<pool id="a" default="true"\n      ${EXT_ATTRIBUTES('ext')}/>\n</http-connection-pools>`
  const { pools } = parseConfig(xml)
  t.strictSame(plain(pools[0]!), { ...DEFAULTS, id: 'a', default: true, ...EXT_VALUES })
})

t.test('the extension namespace may be declared on the pool itself', async (t) => {
  const xml = `<http-connection-pools xmlns="${REPOSE_NS}"><pool id="a" default="true" xmlns:f="${EXT_NS}" f:retry.max-attempts="1"/></http-connection-pools>`
  t.equal(parseConfig(xml).pools[0]!['retry.max-attempts'], 1)
})

t.test('a prefixed Repose namespace', async (t) => {
  const xml = `<r:http-connection-pools xmlns:r="${REPOSE_NS}" xmlns:x="${EXT_NS}">\n` +
    '  <r:pool id="a" default="true" cache.ttl="0" x:retry.max-attempts="2">\n' +
    '    <r:headers><r:header name="X-A" value="1"/></r:headers>\n' +
    '  </r:pool>\n' +
    '  <r:pool id="b"/>\n' +
    '</r:http-connection-pools>'
  const { defaultId, pools } = parseConfig(xml)
  t.equal(defaultId, 'a')
  t.same(pools.map((p) => p.id), ['a', 'b'])
  t.equal(pools[0]!['cache.ttl'], 0)
  t.equal(pools[0]!['retry.max-attempts'], 2)
  t.same(plain(pools[0]!).headers, [{ name: 'X-A', value: '1' }])
})

t.test('namespace declarations, comments, the XML declaration and a BOM are not errors', async (t) => {
  const xml = '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<!-- pools -->\n' +
    `<http-connection-pools xmlns="${REPOSE_NS}" xmlns:unused="urn:example:unused">\n` +
    '  <!-- the default pool -->\n' +
    '  <pool id="a" default="true" xmlns:other="urn:example:other"><!-- no headers --></pool>\n' +
    '</http-connection-pools>\n'
  t.equal(parseConfig(xml).defaultId, 'a')
})

t.test('Repose attributes on other pools do not leak', async (t) => {
  const { pools } = parseConfig(wrap('<pool id="a" default="true" cache.ttl="1" x:http2="true"><headers><header name="X-A" value="1"/></headers></pool>\n<pool id="b"/>'))
  t.strictSame(plain(pools[1]!), { ...DEFAULTS, id: 'b' })
})

t.test('proxy forms', async (t) => {
  const forms: [string, string, number][] = [
    ['http://h:3128', 'h', 3128],
    ['http://h', 'h', 80],
    ['h:3128', 'h', 3128],
    ['h', 'h', 80],
    ['http://example.com:80', 'example.com', 80]
  ]
  for (const [value, hostname, port] of forms) {
    const { pools } = parseConfig(onePool(`http.route.default-proxy="${value}"`))
    t.equal(pools[0]!['http.route.default-proxy'], value, `${value} is kept as written`)
    const parsed = parseProxy(value)
    t.ok(parsed.ok, value)
    if (parsed.ok) t.match(parsed.value, { protocol: 'http:', hostname, port, username: '', password: '' }, `${value}: http, ${hostname}, port ${port}`)
    t.equal(JSON.parse(JSON.stringify(pools[0]))['http.route.default-proxy'], `http://${hostname}:${port}`, `${value} prints with scheme and port`)
  }
})

t.test('proxy forms with user-info', async (t) => {
  for (const value of ['http://proxyuser:proxypass@h:3128', 'http://proxyuser:proxypass@h', 'proxyuser:proxypass@h:3128', 'proxyuser:proxypass@h']) {
    const { pools } = parseConfig(onePool(`http.route.default-proxy="${value}"`))
    const s = pools[0]!
    t.equal(s['http.route.default-proxy'], value, 'the pool has the real value')
    const parsed = parseProxy(value)
    if (parsed.ok) t.match(parsed.value, { hostname: 'h', username: 'proxyuser', password: 'proxypass' }, value)
    else t.fail(`${value} should parse`)
    const port = value.endsWith(':3128') ? 3128 : 80
    const json = JSON.stringify(s)
    const shown = inspect(s, { depth: 5 })
    t.equal(JSON.parse(json)['http.route.default-proxy'], `http://***@h:${port}`, `${value}: JSON shows *** for the user-info`)
    t.match(shown, `http://***@h:${port}`, `${value}: inspect shows *** for the user-info`)
    for (const [how, text] of [['JSON', json], ['inspect', shown], ['inspect of the result', inspect(parseConfig(onePool(`http.route.default-proxy="${value}"`)), { depth: 10 })]]) {
      t.notMatch(text!, 'proxypass', `${value}: no password in ${how}`)
      t.notMatch(text!, 'proxyuser', `${value}: no user name in ${how}`)
    }
  }
})

t.test('percent-encoded proxy user-info is decoded', async (t) => {
  const parsed = parseProxy('http://us%40er:p%3Ass@h:3128')
  if (parsed.ok) t.match(parsed.value, { username: 'us@er', password: 'p:ss', hostname: 'h', port: 3128 })
  else t.fail('should parse')
})

t.test('character references in header values', async (t) => {
  const value = (raw: string): string => {
    const { pools } = parseConfig(onePool('', `<headers><header name="X-A" value="${raw}"/></headers>`))
    return pools[0]!.headers[0]!.value
  }
  t.equal(value('a&#9;b'), 'a\tb', '&#9; is a tab, which a header value may hold')
  t.equal(value('a&#x9;b'), 'a\tb', '&#x9; too')
  t.equal(value('&amp;#10;'), '&#10;', '&amp;#10; is the text "&#10;", not decoded twice')
  t.equal(value('a&lt;b&gt;c'), 'a<b>c')
  t.equal(value('&quot;q&quot; &apos;s&apos; &amp;'), '"q" \'s\' &')
  t.equal(value('&#x41;&#66;'), 'AB')
  t.equal(value('caf&#xE9;'), 'café')
})

t.test('literal white space in attribute values is normalised as XML requires', async (t) => {
  const { pools } = parseConfig(onePool('', '<headers><header name="X-A" value="a\nb\tc"/></headers>'))
  t.equal(pools[0]!.headers[0]!.value, 'a b c', 'a literal newline or tab is a space, so it cannot inject a header')
})

t.test('headers keep their order, name case and value', async (t) => {
  const { pools } = parseConfig(onePool('', '<headers>\n<header name="X-One" value="1"/>\n<header name="x-two" value=" spaced "/>\n</headers>'))
  t.same(plain(pools[0]!).headers, [{ name: 'X-One', value: '1' }, { name: 'x-two', value: ' spaced ' }])
})

t.test('integers: xs:int forms', async (t) => {
  const ttl = (raw: string): number => parseConfig(onePool(`cache.ttl="${raw}"`)).pools[0]!['cache.ttl']
  t.equal(ttl('+5'), 5)
  t.equal(ttl('007'), 7)
  t.equal(ttl(' 42 '), 42, 'surrounding white space collapses')
  t.equal(ttl('2147483647'), 2147483647)
  t.equal(ttl('0'), 0)
  t.ok(Object.is(ttl('-0'), 0), '-0 is zero, not negative zero')
})

t.test('booleans: xs:boolean forms', async (t) => {
  const nodelay = (raw: string): boolean => parseConfig(onePool(`http.tcp.nodelay="${raw}"`)).pools[0]!['http.tcp.nodelay']
  t.equal(nodelay('1'), true)
  t.equal(nodelay('0'), false)
  t.equal(nodelay('true'), true)
  t.equal(nodelay('false'), false)
  t.equal(nodelay(' true '), true)
  t.equal(nodelay(' false '), false)
  t.equal(parseConfig(wrap('<pool id="a" default="1"/>')).defaultId, 'a', 'default="1" makes the default pool')
  t.equal(parseConfig(wrap('<pool id="a" default=" true "/>')).defaultId, 'a', 'default=" true " too')
})

t.test('0 means "none" where SPEC says so, and is accepted', async (t) => {
  const zeroes = ['cache.ttl', 'http.socket.timeout', 'http.connection.timeout', 'http.connection.max-line-length',
    'http.connection.max-header-count', 'keepalive.timeout']
  const extZeroes = ['queue.timeout', 'request.timeout', 'circuit-breaker.threshold', 'connection.max-lifetime']
  const attrs = zeroes.map((a) => `${a}="0"`).concat(extZeroes.map((a) => `x:${a}="0"`)).join(' ')
  const s = parseConfig(onePool(attrs)).pools[0]! as unknown as Record<string, unknown>
  for (const a of [...zeroes, ...extZeroes]) t.equal(s[a], 0, a)
})

t.test('max-per-route may equal max-total', async (t) => {
  const s = parseConfig(onePool('http.conn-manager.max-total="1" http.conn-manager.max-per-route="1"')).pools[0]!
  t.equal(s['http.conn-manager.max-total'], 1)
  t.equal(s['http.conn-manager.max-per-route'], 1)
})

t.test('retry.methods and retry.statuses are comma-separated lists', async (t) => {
  const s = parseConfig(onePool('x:retry.methods=" GET , POST,PATCH " x:retry.statuses=" 500, 503 ,429"')).pools[0]!
  t.strictSame([...s['retry.methods']], ['GET', 'POST', 'PATCH'])
  t.strictSame([...s['retry.statuses']], [500, 503, 429])
})

t.test('an invalid config after a valid one does not disturb the valid result', async (t) => {
  const good = parseConfig(onePool('cache.ttl="7"'))
  parseError(onePool('cache.ttl="x"'))
  t.equal(good.pools[0]!['cache.ttl'], 7)
})

// Every validation rule of SPEC.md "The XML file" has an input here that it
// must refuse: Repose's own messages, unknown names in every namespace, value
// types, proxies, character references, keystore files, secrets in errors.
import { chmodSync, copyFileSync, mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { inspect } from 'node:util'
import t, { type Test } from 'tap'
import { ConfigError, type ConfigProblem } from '../../lib/config/errors.js'
import { parseConfig } from '../../lib/config/parse.js'
import { EXT_NS, FIXTURES, REPOSE_NS, onePool, parseError, wrap } from '../helpers/config.js'

const MSG_UNIQUE_IDS = 'Pools must have unique ids'
const MSG_ONE_DEFAULT = 'One and only one default pool must be defined'
const MSG_PER_ROUTE = 'Max connections per route must be less than or equal to total max connections'
const MSG_KEYSTORE = 'IF a keystore filename, password, or key password is provided, THEN all must be provided'

/** The single problem of a config that has exactly one. */
function onlyProblem (t: Test, err: ConfigError): ConfigProblem {
  t.equal(err.errors.length, 1, `one problem (got: ${err.message})`)
  return err.errors[0]!
}

t.test('ConfigError', async (t) => {
  const err = parseError(wrap('<pool id="a"/>'))
  t.ok(err instanceof Error)
  t.equal(err.name, 'ConfigError')
  t.ok(Array.isArray(err.errors))
})

t.test("Repose's messages, verbatim", async (t) => {
  t.test('unique ids', async (t) => {
    const err = parseError(wrap('<pool id="a" default="true"/>\n<pool id="b"/>\n<pool id="a"/>'))
    const p = onlyProblem(t, err)
    t.equal(p.message, MSG_UNIQUE_IDS)
    t.equal(p.pool, 'a')
    t.equal(p.line, 4, 'on the second pool of that id')
    t.match(err.message, MSG_UNIQUE_IDS)
  })

  t.test('unique ids: a duplicate that is also the second default still reports both rules', async (t) => {
    const err = parseError(wrap('<pool id="a" default="true"/>\n<pool id="a" default="true"/>'))
    t.same(err.errors.map((e) => e.message).sort(), [MSG_ONE_DEFAULT, MSG_UNIQUE_IDS].sort())
  })

  t.test('one and only one default: none', async (t) => {
    const p = onlyProblem(t, parseError(wrap('<pool id="a"/>\n<pool id="b" default="false"/>')))
    t.equal(p.message, MSG_ONE_DEFAULT)
    t.equal(p.attribute, 'default')
  })

  t.test('one and only one default: two', async (t) => {
    const p = onlyProblem(t, parseError(wrap('<pool id="a" default="true"/>\n<pool id="b"/>\n<pool id="c" default="1"/>')))
    t.equal(p.message, MSG_ONE_DEFAULT)
    t.equal(p.attribute, 'default')
    t.equal(p.pool, 'c', 'names the second default')
    t.equal(p.line, 4)
  })

  t.test('one and only one default: three', async (t) => {
    const err = parseError(wrap('<pool id="a" default="true"/>\n<pool id="b" default="true"/>\n<pool id="c" default="true"/>'))
    t.ok(err.errors.some((e) => e.message === MSG_ONE_DEFAULT))
  })

  t.test('per route greater than total', async (t) => {
    const p = onlyProblem(t, parseError(wrap('<pool id="a" default="true"\n  http.conn-manager.max-total="10"\n  http.conn-manager.max-per-route="11"/>')))
    t.equal(p.message, MSG_PER_ROUTE)
    t.equal(p.pool, 'a')
    t.equal(p.attribute, 'http.conn-manager.max-per-route')
    t.equal(p.line, 4, 'the line of max-per-route')
  })

  t.test('per route above the default total (both written)', async (t) => {
    const p = onlyProblem(t, parseError(onePool('http.conn-manager.max-total="400" http.conn-manager.max-per-route="401"')))
    t.equal(p.message, MSG_PER_ROUTE)
  })

  t.test('keystore trio: every partial combination', async (t) => {
    const trio = {
      'keystore-filename': 'keystore-filename="client.jks"',
      'keystore-password': 'keystore-password="kspass"',
      'key-password': 'key-password="keypass"'
    }
    const names = Object.keys(trio) as (keyof typeof trio)[]
    const combos = [[0], [1], [2], [0, 1], [0, 2], [1, 2]].map((c) => c.map((i) => names[i]!))
    for (const given of combos) {
      const err = parseError(onePool(given.map((n) => trio[n]).join(' ')), { configRoot: FIXTURES })
      const p = onlyProblem(t, err)
      t.equal(p.message, MSG_KEYSTORE, `only ${given.join(' + ')}`)
      t.equal(p.pool, 'a')
      t.notMatch(err.message, 'kspass', 'no keystore password in the error')
      t.notMatch(err.message, 'keypass', 'no key password in the error')
    }
    const ok = parseConfig(onePool(Object.values(trio).join(' ')), { configRoot: FIXTURES })
    t.equal(ok.pools[0]!['keystore-filename'], 'client.jks', 'all three are fine')
  })
})

t.test('unknown names are refused in every namespace', async (t) => {
  t.test('a typo in a Repose attribute', async (t) => {
    const err = parseError(wrap('<pool id="a" default="true"\n  http.conn-manager.max-totl="5"/>'))
    const p = onlyProblem(t, err)
    t.equal(p.attribute, 'http.conn-manager.max-totl')
    t.equal(p.pool, 'a')
    t.equal(p.line, 3)
    t.match(p.message, 'http.conn-manager.max-totl')
    t.match(err.message, 'http.conn-manager.max-totl')
  })

  t.test('an unknown attribute in no namespace', async (t) => {
    const p = onlyProblem(t, parseError(onePool('colour="blue"')))
    t.equal(p.attribute, 'colour')
  })

  t.test('an unknown element in a pool', async (t) => {
    const p = onlyProblem(t, parseError(onePool('', '<retry/>')))
    t.match(p.message, 'retry')
    t.equal(p.pool, 'a')
  })

  t.test('an unknown element at the top', async (t) => {
    const p = onlyProblem(t, parseError(wrap('<pool id="a" default="true"/>\n<pools/>')))
    t.match(p.message, 'pools')
    t.equal(p.line, 3)
  })

  t.test('an element of another namespace', async (t) => {
    t.match(onlyProblem(t, parseError(wrap('<pool id="a" default="true"/>\n<o:note xmlns:o="urn:example:o"/>'))).message, 'note')
    t.match(onlyProblem(t, parseError(onePool('', '<o:note xmlns:o="urn:example:o"/>'))).message, 'note')
  })

  t.test('a <pool> in the extension namespace is not a pool', async (t) => {
    t.match(onlyProblem(t, parseError(wrap('<pool id="a" default="true"/>\n<x:pool id="b"/>'))).message, 'pool')
  })

  t.test('a typo in an extension attribute', async (t) => {
    const err = parseError(onePool('x:retry.max-atempts="5"'))
    const p = onlyProblem(t, err)
    t.equal(p.attribute, 'x:retry.max-atempts')
    t.match(p.message, 'retry.max-atempts')
  })

  t.test('an extension attribute with a misspelt namespace URI', async (t) => {
    const err = parseError(onePool('y:retry.max-attempts="5"').replace('<pool', '<pool xmlns:y="urn:fastify-http-pool:1"'))
    const p = onlyProblem(t, err)
    t.equal(p.attribute, 'y:retry.max-attempts', 'names the attribute')
    t.match(p.message, 'urn:fastify-http-pool:1', 'names the namespace it is in')
    t.match(err.message, 'urn:fastify-http-pool:1')
  })

  t.test('an extension attribute without a prefix', async (t) => {
    const p = onlyProblem(t, parseError(onePool('retry.max-attempts="5"')))
    t.equal(p.attribute, 'retry.max-attempts')
    t.match(p.message, EXT_NS, 'says where extensions live')
  })

  t.test('a Repose attribute in the extension namespace', async (t) => {
    const p = onlyProblem(t, parseError(onePool('x:cache.ttl="5"')))
    t.equal(p.attribute, 'x:cache.ttl')
  })

  t.test('a Repose attribute in the Repose namespace (attributes take no namespace)', async (t) => {
    const p = onlyProblem(t, parseError(wrap('<pool id="a" default="true" r:cache.ttl="5"/>', ` xmlns:r="${REPOSE_NS}"`)))
    t.equal(p.attribute, 'r:cache.ttl')
  })

  t.test('xml:lang is not a pool attribute either', async (t) => {
    t.equal(onlyProblem(t, parseError(onePool('xml:lang="en"'))).attribute, 'xml:lang')
  })

  t.test('an unknown attribute on the root', async (t) => {
    const p = onlyProblem(t, parseError(wrap('<pool id="a" default="true"/>', ' version="2"')))
    t.equal(p.attribute, 'version')
    t.equal(p.line, 1)
  })

  t.test('an unknown attribute on <headers>', async (t) => {
    const p = onlyProblem(t, parseError(onePool('', '<headers mode="append"><header name="X-A" value="1"/></headers>')))
    t.match(p.attribute, 'mode')
    t.equal(p.pool, 'a')
  })

  t.test('an unknown attribute on <header>', async (t) => {
    const p = onlyProblem(t, parseError(onePool('', '<headers><header name="X-A" value="1" mode="append"/></headers>')))
    t.match(p.attribute, 'mode')
    t.equal(p.pool, 'a')
  })

  t.test('an unknown element in <headers>', async (t) => {
    t.match(onlyProblem(t, parseError(onePool('', '<headers><heder name="X-A" value="1"/></headers>'))).message, 'heder')
  })

  t.test('text where none belongs', async (t) => {
    onlyProblem(t, parseError(onePool('', 'hello')))
    onlyProblem(t, parseError(onePool('', '<headers>hello<header name="X-A" value="1"/></headers>')))
    onlyProblem(t, parseError(wrap('<pool id="a" default="true"/>hello')))
  })

  t.test('<headers> without a <header>', async (t) => {
    onlyProblem(t, parseError(onePool('', '<headers/>')))
  })

  t.test('a <header> without name or value', async (t) => {
    t.equal(onlyProblem(t, parseError(onePool('', '<headers><header value="1"/></headers>'))).pool, 'a')
    t.equal(onlyProblem(t, parseError(onePool('', '<headers><header name="X-A"/></headers>'))).pool, 'a')
  })

  t.test('the wrong root element name', async (t) => {
    const p = onlyProblem(t, parseError(`<http-connection-pool xmlns="${REPOSE_NS}"><pool id="a" default="true"/></http-connection-pool>`))
    t.match(p.message, 'http-connection-pools')
  })

  t.test('the wrong root namespace', async (t) => {
    const p = onlyProblem(t, parseError('<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v2.0"><pool id="a" default="true"/></http-connection-pools>'))
    t.match(p.message, REPOSE_NS)
  })

  t.test('no namespace at all', async (t) => {
    const p = onlyProblem(t, parseError('<http-connection-pools><pool id="a" default="true"/></http-connection-pools>'))
    t.match(p.message, REPOSE_NS)
  })

  t.test('an undeclared prefix on an attribute', async (t) => {
    const p = onlyProblem(t, parseError(onePool('z:retry.max-attempts="5"')))
    t.match(p.message, '"z"')
    t.equal(p.line, 2)
  })

  t.test('an undeclared prefix on an element', async (t) => {
    t.match(onlyProblem(t, parseError(onePool('', '<q:headers/>'))).message, '"q"')
  })

  t.test('no pool at all', async (t) => {
    onlyProblem(t, parseError(wrap('')))
  })

  t.test('a pool without id, or with an empty one', async (t) => {
    t.equal(onlyProblem(t, parseError(wrap('<pool default="true"/>'))).attribute, 'id')
    t.equal(onlyProblem(t, parseError(wrap('<pool id=" " default="true"/>'))).attribute, 'id')
  })
})

const INTEGERS = ['cache.ttl', 'http.conn-manager.max-total', 'http.conn-manager.max-per-route', 'http.socket.timeout',
  'http.socket.buffer-size', 'http.connection.timeout', 'http.connection.max-line-length', 'http.connection.max-header-count',
  'keepalive.timeout', 'x:retry.max-attempts', 'x:retry.base-delay', 'x:retry.max-delay', 'x:queue.timeout',
  'x:request.timeout', 'x:circuit-breaker.threshold', 'x:circuit-breaker.reset', 'x:queue.max-pending', 'x:retry.budget',
  'x:retry.min-concurrent', 'x:connection.max-lifetime']
const BOOLEANS = ['http.tcp.nodelay', 'x:http2', 'x:tls.insecure']

t.test('integers (xs:int, not negative) are checked on every integer attribute', async (t) => {
  for (const attribute of INTEGERS) {
    for (const bad of ['abc', '-1', '1.5', '', '2147483648', '1e3', '0x10', '5ms', '9999999999999999999999']) {
      const p = onlyProblem(t, parseError(onePool(`${attribute}="${bad}"`)))
      t.equal(p.attribute, attribute, `${attribute}="${bad}" is refused`)
      t.equal(p.pool, 'a')
    }
  }
  const max = parseConfig(onePool('http.socket.timeout="2147483647"')).pools[0]!
  t.equal(max['http.socket.timeout'], 2147483647)
})

t.test('x:retry.budget is a percent: 0 to 100', async (t) => {
  const p = onlyProblem(t, parseError(onePool('x:retry.budget="101"')))
  t.equal(p.attribute, 'x:retry.budget')
  t.match(p.message, /at most 100/)
  t.equal(parseConfig(onePool('x:retry.budget="100"')).pools[0]!['retry.budget'], 100)
  t.equal(parseConfig(onePool('x:retry.budget="0"')).pools[0]!['retry.budget'], 0)
})

t.test('the messages say what is wrong with an integer', async (t) => {
  t.match(onlyProblem(t, parseError(onePool('cache.ttl="-1"'))).message, /negative/)
  t.match(onlyProblem(t, parseError(onePool('cache.ttl="2147483648"'))).message, /2147483647/)
})

t.test('booleans (xs:boolean) are checked on every boolean attribute', async (t) => {
  for (const attribute of ['default', ...BOOLEANS]) {
    for (const bad of ['yes', 'no', 'TRUE', 'False', '', '2', 'on']) {
      const err = parseError(attribute === 'default' ? wrap(`<pool id="a" default="${bad}"/>`) : onePool(`${attribute}="${bad}"`))
      t.ok(err.errors.some((e) => e.attribute === attribute && e.pool === 'a'), `${attribute}="${bad}" is refused`)
    }
  }
})

t.test('a connection limit of 0 is refused', async (t) => {
  const total = onlyProblem(t, parseError(onePool('http.conn-manager.max-total="0"')))
  t.equal(total.attribute, 'http.conn-manager.max-total')
  const perRoute = onlyProblem(t, parseError(onePool('http.conn-manager.max-per-route="0"')))
  t.equal(perRoute.attribute, 'http.conn-manager.max-per-route')
  const both = parseError(onePool('http.conn-manager.max-total="0" http.conn-manager.max-per-route="0"'))
  t.same(both.errors.map((e) => e.attribute).sort(), ['http.conn-manager.max-per-route', 'http.conn-manager.max-total'])
})

t.test('retry.statuses and retry.methods values', async (t) => {
  for (const bad of ['abc', '600', '99', '50', '5000', '500;503', '500 503']) {
    t.equal(onlyProblem(t, parseError(onePool(`x:retry.statuses="${bad}"`))).attribute, 'x:retry.statuses', `statuses "${bad}"`)
  }
  for (const bad of ['GE T', 'GET;POST', 'GET/POST', '(GET)']) {
    t.equal(onlyProblem(t, parseError(onePool(`x:retry.methods="${bad}"`))).attribute, 'x:retry.methods', `methods "${bad}"`)
  }
})

t.test('proxy values', async (t) => {
  for (const bad of ['h:abc', 'http://h:abc', 'proxyuser:proxypass@h:abc', 'http://proxyuser:proxypass@h:80x', 'http://proxyuser:proxypass@h:-1', 'h:', 'http://']) {
    const err = parseError(onePool(`http.route.default-proxy="${bad}"`))
    const p = onlyProblem(t, err)
    t.equal(p.attribute, 'http.route.default-proxy', `"${bad}" is refused`)
    t.equal(p.pool, 'a')
    for (const text of [p.message, err.message, inspect(err), JSON.stringify(err.errors), String(err.stack)]) {
      t.notMatch(text, 'proxypass', 'never the proxy password')
      t.notMatch(text, 'proxyuser', 'never the proxy user')
    }
  }
})

t.test('character references in header values and names', async (t) => {
  for (const ref of ['&#10;', '&#xA;', '&#xa;', '&#13;', '&#xD;']) {
    const err = parseError(onePool('', `<headers><header name="X-Inject" value="a${ref}Injected: yes"/></headers>`))
    const p = onlyProblem(t, err)
    t.equal(p.pool, 'a', `${ref} in a header value is refused`)
    t.match(p.attribute, 'X-Inject')
  }
  onlyProblem(t, parseError(onePool('', '<headers><header name="X-A" value="a&#127;b"/></headers>')))
  onlyProblem(t, parseError(onePool('', '<headers><header name="X&#10;A" value="1"/></headers>')))
})

t.test('undefined entities and illegal character references', async (t) => {
  for (const [label, value] of [['&foo;', 'a&foo;b'], ['&#0;', 'a&#0;b'], ['&#x0;', 'a&#x0;b'], ['&#1;', 'a&#1;b'], ['&#xFFFE;', '&#xFFFE;'],
    ['&#xD800;', '&#xD800;'], ['&#x110000;', '&#x110000;'], ['&#;', '&#;'], ['&#xZZ;', '&#xZZ;'], ['bare &', 'a & b']]) {
    const err = parseError(onePool('', `<headers><header name="X-A" value="${value}"/></headers>`))
    t.ok(err.errors.length >= 1, `${label} is refused`)
    t.equal(err.errors[0]!.line, 2, `${label}: the line is given`)
  }
})

t.test('an error in an attribute value names the pool and the attribute', async (t) => {
  // SPEC: the error "names the file, line, pool id and attribute".
  const p = onlyProblem(t, parseError(wrap('<pool id="a" default="true"\n  cache.ttl="&foo;"/>')))
  t.equal(p.line, 3)
  t.equal(p.pool, 'a')
  t.equal(p.attribute, 'cache.ttl')
})

t.test('header names must be HTTP tokens', async (t) => {
  for (const name of ['X A', 'X:A', 'X-A:', '', 'X(A)', 'é']) {
    const p = onlyProblem(t, parseError(onePool('', `<headers><header name="${name}" value="1"/></headers>`)))
    t.equal(p.pool, 'a', `"${name}" is refused`)
  }
})

t.test('framing and hop-by-hop headers cannot be set by a pool', async (t) => {
  for (const name of ['Content-Length', 'transfer-encoding', 'Connection', 'Upgrade']) {
    onlyProblem(t, parseError(onePool('', `<headers><header name="${name}" value="1"/></headers>`)))
  }
})

t.test('secrets never appear in errors, JSON or inspect output', async (t) => {
  const SECRET = 'S3cr3tV4lue'
  const checkAbsent = (t: Test, texts: Record<string, string>): void => {
    for (const [how, text] of Object.entries(texts)) t.notMatch(text, SECRET, `not in ${how}`)
  }
  const errorTexts = (err: ConfigError): Record<string, string> => ({
    message: err.message,
    stack: String(err.stack),
    errors: JSON.stringify(err.errors),
    inspect: inspect(err, { depth: 10 })
  })

  t.test('valid settings', async (t) => {
    const xml = wrap(`<pool id="a" default="true" keystore-filename="client.jks" keystore-password="${SECRET}-ks" key-password="${SECRET}-key"\n` +
      `      truststore-filename="servers.jks" truststore-password="${SECRET}-ts" http.route.default-proxy="http://u${SECRET}:p${SECRET}@proxy:3128">\n` +
      `  <headers><header name="Authorization" value="Bearer ${SECRET}"/><header name="X-Tab" value="a&#9;${SECRET}"/></headers>\n` +
      '</pool>')
    const result = parseConfig(xml, { configRoot: FIXTURES })
    const s = result.pools[0]!
    t.equal(s['keystore-password'], `${SECRET}-ks`, 'the pool itself has the real values')
    t.equal(s.headers[0]!.value, `Bearer ${SECRET}`)
    t.equal(s.headers[1]!.value, `a\t${SECRET}`)
    checkAbsent(t, {
      'JSON of the settings': JSON.stringify(s),
      'JSON of the result': JSON.stringify(result),
      'inspect of the settings': inspect(s, { depth: 10 }),
      'inspect of the result': inspect(result, { depth: 10 }),
      'inspect of the headers': inspect(s.headers, { depth: 10 }),
      'JSON of the headers': JSON.stringify(s.headers),
      'inspect with showHidden': inspect(s, { depth: 10, showHidden: true, customInspect: true })
    })
    const printed = JSON.parse(JSON.stringify(s))
    t.equal(printed['keystore-password'], '***')
    t.equal(printed['key-password'], '***')
    t.equal(printed['truststore-password'], '***')
    t.equal(printed['http.route.default-proxy'], 'http://***@proxy:3128')
    t.same(printed.headers, [{ name: 'Authorization', value: '***' }, { name: 'X-Tab', value: '***' }])
    t.equal(printed['keystore-filename'], 'client.jks', 'file names are not secret')
    t.match(inspect(s), "'keystore-password': '***'")
  })

  t.test('invalid configs', async (t) => {
    const cases = {
      'keystore trio': `keystore-password="${SECRET}"`,
      'keystore trio (key password)': `key-password="${SECRET}" keystore-password="${SECRET}2"`,
      'truststore missing': `truststore-filename="nope.jks" truststore-password="${SECRET}"`,
      'keystore missing': `keystore-filename="nope.jks" keystore-password="${SECRET}" key-password="${SECRET}"`,
      'proxy port': `http.route.default-proxy="http://u:${SECRET}@h:port"`,
      'proxy scheme': `http.route.default-proxy="ftp://u:${SECRET}@h"`,
      'other errors next to secrets': `cache.ttl="x" keystore-password="${SECRET}" key-password="${SECRET}" truststore-password="${SECRET}"`
    }
    for (const [label, attrs] of Object.entries(cases)) {
      const err = parseError(onePool(attrs), { configRoot: FIXTURES })
      t.ok(err.errors.length >= 1, label)
      checkAbsent(t, errorTexts(err))
    }
    const headerCases = {
      'injection in a secret header': `Bearer ${SECRET}&#10;X-Evil: 1`,
      'CR in a secret header': `${SECRET}&#13;`,
      'control character': `${SECRET}&#127;`
    }
    for (const [label, value] of Object.entries(headerCases)) {
      const err = parseError(onePool('', `<headers><header name="Authorization" value="${value}"/></headers>`))
      t.ok(err.errors.length >= 1, label)
      checkAbsent(t, errorTexts(err))
    }
    const badName = parseError(onePool('', `<headers><header name="Bad Name" value="${SECRET}"/></headers>`))
    checkAbsent(t, errorTexts(badName))
  })

  t.test('a malformed reference inside a secret is not echoed', async (t) => {
    // An unescaped "&" in a password: the part up to ";" is the password too.
    for (const attrs of [`keystore-password="p&${SECRET};" key-password="k" keystore-filename="client.jks"`,
      `http.route.default-proxy="http://u:p&${SECRET};@h"`]) {
      const err = parseError(onePool(attrs), { configRoot: FIXTURES })
      checkAbsent(t, errorTexts(err))
    }
    const err = parseError(onePool('', `<headers><header name="Authorization" value="Bearer &${SECRET};"/></headers>`))
    checkAbsent(t, errorTexts(err))
  })
})

t.test('keystore and truststore files', async (t) => {
  const root = t.testdir({ certs: {}, 'a-directory': {}, elsewhere: {} })
  copyFileSync(join(FIXTURES, 'client.jks'), join(root, 'certs', 'ks.jks'))
  copyFileSync(join(FIXTURES, 'servers.jks'), join(root, 'certs', 'ts.jks'))
  const keystore = (file: string): string => onePool(`keystore-filename="${file}" keystore-password="password" key-password="password"`)
  const truststore = (file: string): string => onePool(`truststore-filename="${file}" truststore-password="password"`)

  t.test('a relative name resolves against configRoot', async (t) => {
    const ok = parseConfig(keystore('ks.jks'), { configRoot: join(root, 'certs') })
    t.equal(ok.pools[0]!['keystore-filename'], 'ks.jks', 'kept as written')
    t.ok(parseConfig(truststore('ts.jks'), { configRoot: join(root, 'certs') }))
    t.ok(parseConfig(keystore('certs/ks.jks'), { configRoot: root }), 'a sub-directory of configRoot')
    t.ok(parseConfig(keystore('../certs/ks.jks'), { configRoot: join(root, 'elsewhere') }), '.. from configRoot')
  })

  t.test('the same name under another configRoot is refused', async (t) => {
    for (const [attribute, xml] of [['keystore-filename', keystore('ks.jks')], ['truststore-filename', truststore('ts.jks')]]) {
      const err = parseError(xml!, { configRoot: join(root, 'elsewhere') })
      const p = onlyProblem(t, err)
      t.equal(p.attribute, attribute)
      t.equal(p.pool, 'a')
      t.equal(p.line, 2)
      t.match(p.message, join(root, 'elsewhere'), 'says where it looked')
    }
  })

  t.test('without configRoot, relative names resolve against the working directory', async (t) => {
    const cwd = process.cwd()
    t.teardown(() => process.chdir(cwd))
    process.chdir(join(root, 'certs'))
    t.ok(parseConfig(keystore('ks.jks')))
    process.chdir(join(root, 'elsewhere'))
    t.equal(onlyProblem(t, parseError(keystore('ks.jks'))).attribute, 'keystore-filename')
  })

  t.test('an absolute name ignores configRoot', async (t) => {
    t.ok(parseConfig(keystore(join(root, 'certs', 'ks.jks')), { configRoot: join(root, 'elsewhere') }))
    t.equal(onlyProblem(t, parseError(truststore(join(root, 'certs', 'missing.jks')), { configRoot: join(root, 'certs') })).attribute, 'truststore-filename')
  })

  t.test('a directory is not a keystore', async (t) => {
    t.equal(onlyProblem(t, parseError(keystore('a-directory'), { configRoot: root })).attribute, 'keystore-filename')
    t.equal(onlyProblem(t, parseError(truststore('a-directory'), { configRoot: root })).attribute, 'truststore-filename')
    t.equal(onlyProblem(t, parseError(truststore('.'), { configRoot: root })).attribute, 'truststore-filename')
  })

  t.test('a symlink loop or a dangling symlink is refused', async (t) => {
    symlinkSync('loop-b', join(root, 'loop-a'))
    symlinkSync('loop-a', join(root, 'loop-b'))
    symlinkSync('gone.jks', join(root, 'dangling.jks'))
    t.equal(onlyProblem(t, parseError(keystore('loop-a'), { configRoot: root })).attribute, 'keystore-filename')
    t.equal(onlyProblem(t, parseError(truststore('dangling.jks'), { configRoot: root })).attribute, 'truststore-filename')
  })

  t.test('a file that cannot be opened', { skip: process.getuid?.() === 0 ? 'running as root: permissions are not enforced' : false }, async (t) => {
    const dir = join(root, 'locked')
    mkdirSync(dir, { mode: 0o000 })
    t.teardown(() => chmodSync(dir, 0o700))
    t.equal(onlyProblem(t, parseError(keystore('locked/ks.jks'), { configRoot: root })).attribute, 'keystore-filename')
  })
})

t.test('one ConfigError lists every problem, each with its line, pool and attribute', async (t) => {
  const xml = [
    `<http-connection-pools xmlns="${REPOSE_NS}" xmlns:x="${EXT_NS}">`, // 1
    '  <pool id="one" default="true"', // 2
    '        cache.ttl="abc"/>', // 3
    '  <pool id="two"', // 4
    '        http.conn-manager.max-totl="5"', // 5
    '        http.tcp.nodelay="yes">', // 6
    '    <headers><header name="X-A" value="a&#10;b"/></headers>', // 7
    '  </pool>', // 8
    '  <pool id="three" http.conn-manager.max-total="10"', // 9
    '        http.conn-manager.max-per-route="20"/>', // 10
    '</http-connection-pools>'
  ].join('\n')
  const err = parseError(xml)
  t.equal(err.errors.length, 5, err.message)
  t.match(err.errors, [
    { line: 3, pool: 'one', attribute: 'cache.ttl' },
    { line: 5, pool: 'two', attribute: 'http.conn-manager.max-totl' },
    { line: 6, pool: 'two', attribute: 'http.tcp.nodelay' },
    { line: 7, pool: 'two', attribute: /X-A/ },
    { line: 10, pool: 'three', attribute: 'http.conn-manager.max-per-route', message: MSG_PER_ROUTE }
  ])
  t.match(err.message, /5 errors/)
  for (const e of err.errors) t.match(err.message, `line ${e.line}: pool "${e.pool}": ${e.attribute}: ${e.message}`)
  t.ok(Object.isFrozen(err.errors), 'the list is frozen')
})

t.test('cross-pool rules still run when pools have other problems', async (t) => {
  const err = parseError(wrap('<pool id="a" cache.ttl="x"/>\n<pool id="a" cache.ttl="y"/>'))
  const messages = err.errors.map((e) => e.message)
  t.ok(messages.includes(MSG_UNIQUE_IDS), 'duplicate ids are found')
  t.ok(messages.includes(MSG_ONE_DEFAULT), 'the missing default is found')
  t.equal(err.errors.filter((e) => e.attribute === 'cache.ttl').length, 2)
})

t.test('the ConfigError message names line, pool and attribute without repeating itself', async (t) => {
  const err = parseError(wrap('<pool default="true"/>'))
  t.match(err.message, /line 2/)
  t.notMatch(err.message, 'id: id:', 'the attribute is named once')
})

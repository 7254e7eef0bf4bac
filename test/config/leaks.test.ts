// SPEC "Nothing leaks", for the config: a typo that makes one attribute's
// value run into the next one's password, or malformed XML around a proxy's
// user-info, shows the secret nowhere: not in the error, `check` output,
// reload logs, stats().lastReloadError or anything printed. A pool id with a
// control character is refused and never repeated (it would forge lines).
import { join } from 'node:path'
import t from 'tap'
import { parseError, wrap } from '../helpers/config.js'
import { leakProbe, leaksOf } from '../helpers/secrets.js'

const KS = 'Hunter2KS'
const KP = 'Hunter2KP'
const PROXY_PASS = 'Pa55word9'

const cases = {
  // The opening quote of keepalive.timeout is a single one: its value runs to the next single quote.
  'a quote typo swallows the next attributes': {
    xml: wrap(`<pool id="a" default="true" keepalive.timeout='0" keystore-password="${KS}" key-password="${KP}" cache.ttl=' http.tcp.nodelay="true"/>`),
    secrets: [KS, KP]
  },
  // The validator's own message quoted the proxy value as an attribute name.
  'malformed XML around proxy user-info': {
    xml: wrap(`<pool id="a" default="true' http.route.default-proxy="http://fhp:${PROXY_PASS}@proxy:3128" cache.ttl='1"/>`),
    secrets: [PROXY_PASS, `fhp:${PROXY_PASS}`]
  }
}

t.test('a config error never repeats what a misplaced quote swallowed', async (t) => {
  const probe = await leakProbe(t)
  for (const [label, { xml, secrets }] of Object.entries(cases)) {
    const err = parseError(xml)
    t.equal(err.errors.length, 1, `${label}: one problem (${err.message})`)
    const texts = await probe.texts(xml)
    t.ok(texts['check output']!.includes('1 error'), `${label}: check reports it`)
    t.match(texts['log lines'], /config reload rejected/, `${label}: the reload is logged`)
    t.match(probe.app.pools.stats().start!.lastReloadError, /Invalid connection pool config/, `${label}: stats() keeps the error`)
    for (const secret of secrets) t.same(leaksOf(texts, secret), [], `${label}: ${secret} shows nowhere`)
  }
})

t.test('the messages still say what is wrong, where', async (t) => {
  const swallowed = parseError(cases['a quote typo swallows the next attributes'].xml).errors[0]!
  t.match(swallowed, { line: 2, pool: 'a', attribute: 'keepalive.timeout', message: 'is not an integer (xs:int)' })
  const malformed = parseError(cases['malformed XML around proxy user-info'].xml).errors[0]!
  t.match(malformed, { line: 2, message: /^malformed XML at column \d+: an attribute does not follow white space \(is a quote missing or misplaced\?\)$/ })
  const repeated = parseError(wrap('<pool id="a" default="true" cache.ttl="1" cache.ttl="2"/>')).errors[0]!
  t.match(repeated.message, /an attribute cache\.ttl is repeated$/, 'known names are still named')
  const quotedFile = parseError(wrap(`<pool id="a" default="true" keystore-filename='client.jks" keystore-password="${KS}" key-password=' x:http2="true"/>`)).errors
  t.ok(quotedFile.some((p) => p.attribute === 'keystore-filename' && /its name holds a quote/.test(p.message)), 'a file name with a quote in it is not repeated')
  t.notMatch(JSON.stringify(quotedFile), KS)
})

t.test('a pool id with a control character is refused, and never repeated', async (t) => {
  const forged = 'a&#10;/etc/other.xml:1: pool &quot;b&quot;: cache.ttl: forged'
  for (const id of [forged, 'a&#13;b', 'a&#9;b', 'a&#127;b', 'a&#133;b']) {
    const err = parseError(wrap(`<pool id="${id}" default="true" bogus="1"/>\n<pool id="b"/>`))
    const refused = err.errors.find((p) => p.attribute === 'id')
    t.match(refused, { line: 2, message: /control character/ }, `${id}: refused`)
    t.equal(refused?.pool, undefined, `${id}: the problem does not name the pool`)
    t.ok(err.errors.every((p) => p.pool === undefined || p.pool === 'b'), `${id}: nor does any other problem of that pool`)
    t.notMatch(err.message, /[\n\r\t\x7f\x85]|forged/, `${id}: the message holds no control character`)
  }
  const probe = await leakProbe(t)
  const texts = await probe.texts(wrap(`<pool id="${forged}" default="true"/>`))
  t.same(texts['check output']!.split('\n').filter((l) => !l.startsWith(join(probe.configRoot, 'http-connection-pool.cfg.xml'))), [], 'every line of check output is its own')
  t.same(leaksOf(texts, 'forged'), [], 'the id shows nowhere')
})

// SPEC "Nothing leaks": a config that loads must not fail every request. The
// XML declaration's encoding is honoured for UTF-8, UTF-16 and ISO-8859-1 (a
// Latin-1 "é" reaches the upstream as é, not as U+FFFD and a 502), another
// encoding is refused, and a static header value must be visible Latin-1
// (RFC 9110 field values), else a ConfigError at load.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { check } from '../../lib/cli/check.js'
import { ConfigError } from '../../lib/config/errors.js'
import { loadConfigFile } from '../../lib/config/load.js'
import { config, pool } from '../helpers/xml.js'
import { clientAgent, fetchOutcome, gateway, upstream } from '../helpers/lifecycle.js'
import { parseError, rejection } from '../helpers/config.js'

const VALUE = 'café über ÿ'
const xmlOf = (declaration: string, value = VALUE): string => declaration + config(pool('main', { default: 'true', 'x:retry.max-attempts': 1 }, { 'x-label': value }))

/** A gateway on config `file`, whose `/` forwards to an upstream that answers with the x-label it got. */
async function forwardedLabel (t: Test, file: string): Promise<{ status?: number, body?: string }> {
  // node:http reads header bytes as Latin-1, as they are sent.
  const up = await upstream(t, (req, res) => { res.end(String(req.headers['x-label'])) })
  const gw = await gateway(t, { plugin: { config: file }, routes: { '/': { pool: 'main', to: `${up.origin}/` } } })
  const got = await fetchOutcome(clientAgent(t), `${gw.url}/`, 0)
  return { status: got.statusCode, body: got.body }
}

const files = {
  'UTF-8, declared': Buffer.from(xmlOf('<?xml version="1.0" encoding="UTF-8"?>\n'), 'utf8'),
  'UTF-8, undeclared': Buffer.from(xmlOf(''), 'utf8'),
  'UTF-8 with a byte order mark': Buffer.concat([Buffer.from([0xEF, 0xBB, 0xBF]), Buffer.from(xmlOf('<?xml version="1.0" encoding="utf-8"?>\n'), 'utf8')]),
  'ISO-8859-1': Buffer.from(xmlOf('<?xml version="1.0" encoding="ISO-8859-1"?>\n'), 'latin1'),
  'latin1 (an alias)': Buffer.from(xmlOf("<?xml version='1.0' encoding='latin1'?>\n"), 'latin1'),
  'UTF-16LE with a byte order mark': Buffer.from('\uFEFF' + xmlOf('<?xml version="1.0" encoding="UTF-16"?>\n'), 'utf16le'),
  'UTF-16BE with a byte order mark': Buffer.from('\uFEFF' + xmlOf('<?xml version="1.0" encoding="UTF-16"?>\n'), 'utf16le').swap16(),
  'UTF-16LE without a byte order mark': Buffer.from(xmlOf('<?xml version="1.0" encoding="UTF-16LE"?>\n'), 'utf16le')
}

t.test('each encoding Repose reads: loads, and the Latin-1 header value reaches the upstream unchanged', async (t) => {
  const dir = t.testdir()
  for (const [label, bytes] of Object.entries(files)) {
    const file = join(dir, `${label.replace(/\W+/g, '-')}.cfg.xml`)
    writeFileSync(file, bytes)
    const parsed = await loadConfigFile(file)
    t.equal(parsed.pools[0]!.headers[0]!.value, VALUE, `${label}: the value is read as written`)
    const out: string[] = []
    t.equal(await check(file, { out: (l) => out.push(l), err: (l) => out.push(l) }), 0, `${label}: check accepts it`)
    const got = await forwardedLabel(t, file)
    t.same(got, { status: 200, body: VALUE }, `${label}: forwarded with the header as written`)
  }
})

t.test('another encoding, or bytes that are not what the file says, are refused with a clear message', async (t) => {
  const dir = t.testdir()
  const cases: Record<string, [Buffer, RegExp]> = {
    'Shift_JIS declared': [Buffer.from(xmlOf('<?xml version="1.0" encoding="Shift_JIS"?>\n', 'plain'), 'utf8'), /encoding "Shift_JIS" is not supported: save the file as UTF-8, UTF-16 or ISO-8859-1/],
    'Latin-1 bytes, nothing declared': [Buffer.from(xmlOf(''), 'latin1'), /not valid UTF-8 \(the default when the XML declaration names no encoding\)/],
    'Latin-1 bytes declared UTF-8': [Buffer.from(xmlOf('<?xml version="1.0" encoding="UTF-8"?>\n'), 'latin1'), /not valid UTF-8/],
    'UTF-16 declared, 8-bit bytes': [Buffer.from(xmlOf('<?xml version="1.0" encoding="UTF-16"?>\n', 'plain'), 'utf8'), /does not start as UTF-16 does/],
    'UTF-16 bytes declared ISO-8859-1': [Buffer.from('\uFEFF' + xmlOf('<?xml version="1.0" encoding="ISO-8859-1"?>\n'), 'utf16le'), /is UTF-16 \(by its first bytes\) but its XML declaration says encoding "ISO-8859-1"/]
  }
  for (const [label, [bytes, message]] of Object.entries(cases)) {
    const file = join(dir, `${label.replace(/\W+/g, '-')}.cfg.xml`)
    writeFileSync(file, bytes)
    const err = await rejection(loadConfigFile(file))
    t.equal(err.errors.length, 1, `${label}: one problem`)
    t.match(err.errors[0]!, { line: 1, message }, `${label}: ${err.message}`)
    t.match(err.message, file, `${label}: the error names the file`)
  }
  t.match(parseError(xmlOf('<?xml version="1.0" encoding="EBCDIC-US"?>\n', 'plain')).message, /encoding "EBCDIC-US" is not supported/, 'inline XML declaring another encoding too')
})

t.test('a header value must be visible Latin-1: anything else is a ConfigError at load, never a 502 per request', async (t) => {
  for (const [label, value] of [['the euro sign (U+20AC)', 'price in €'], ['an emoji', 'ok 👍'], ['a C1 control character', 'a&#133;b'], ['U+FFFD', 'caf\uFFFD']]) {
    const err = parseError(config(pool('main', { default: 'true' }, { 'x-label': 'placeholder' })).replace('placeholder', value!))
    t.equal(err.errors.length, 1, `${label}: refused`)
    t.match(err.errors[0]!, { pool: 'main', attribute: 'header x-label', message: /U\+00FF|control character/ }, `${label}: ${err.errors[0]!.message}`)
    t.notMatch(err.message, value!.replace('&#133;', '\x85'), `${label}: the value is not repeated`)
  }
  const file = join(t.testdir(), 'euro.cfg.xml')
  writeFileSync(file, xmlOf('', 'price in €'))
  const up = await upstream(t, (_req, res) => { res.end('reached') })
  const err = await rejection(gateway(t, { plugin: { config: file }, routes: { '/': { pool: 'main', to: `${up.origin}/` } } }))
  t.ok(err instanceof ConfigError, 'the gateway does not start with it')
})

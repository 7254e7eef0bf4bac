// Hostile or broken input: malformed XML, DOCTYPEs (entity expansion, external
// entities), size limits, and inputs built to make the parser slow.
import { readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { ConfigError } from '../../lib/config/errors.js'
import { loadConfigFile } from '../../lib/config/load.js'
import { parseConfig } from '../../lib/config/parse.js'
import { REPOSE_NS, onePool, parseError, rejection, wrap } from '../helpers/config.js'

const MiB = 1024 * 1024

/** Runs `fn`, returning its ConfigError and how long it took (ms). */
function timedError (fn: () => unknown): { err: ConfigError, ms: number } {
  const start = performance.now()
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  const ms = performance.now() - start
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${err === undefined ? 'success' : String(err)}`)
  return { err, ms }
}

t.test('malformed XML: a ConfigError with the line, and the column in the message', async (t) => {
  const cases: [string, string, number][] = [
    ['an unclosed tag', `<http-connection-pools xmlns="${REPOSE_NS}">\n  <pool id="a" default="true">\n</http-connection-pools>\n`, 3],
    ['a mismatched tag', `<http-connection-pools xmlns="${REPOSE_NS}">\n  <pool id="a" default="true">\n  </pol>\n</http-connection-pools>\n`, 3],
    ['an unclosed root', `<http-connection-pools xmlns="${REPOSE_NS}">\n  <pool id="a" default="true"/>\n`, 1],
    ['a repeated attribute', `<http-connection-pools xmlns="${REPOSE_NS}">\n  <pool id="a" default="true" default="false"/>\n</http-connection-pools>`, 2],
    ['an unquoted attribute', `<http-connection-pools xmlns="${REPOSE_NS}">\n\n  <pool id=a default="true"/>\n</http-connection-pools>`, 3],
    ['two roots', `<http-connection-pools xmlns="${REPOSE_NS}"><pool id="a" default="true"/></http-connection-pools>\n<http-connection-pools xmlns="${REPOSE_NS}"><pool id="b" default="true"/></http-connection-pools>`, 2],
    ['text after the root', `<http-connection-pools xmlns="${REPOSE_NS}"><pool id="a" default="true"/></http-connection-pools>\ntrailing`, 2],
    ['no XML at all', 'pools: [default]', 1]
  ]
  for (const [label, xml, line] of cases) {
    const err = parseError(xml)
    t.equal(err.errors.length, 1, label)
    t.equal(err.errors[0]!.line, line, `${label}: line ${line}`)
    t.match(err.errors[0]!.message, /column \d+/, `${label}: the message has the column`)
    t.match(err.message, `line ${line}`, `${label}: the error message has the line`)
  }
})

t.test('a document has exactly one root element, however the roots are written', async (t) => {
  const full = (id: string): string => `<http-connection-pools xmlns="${REPOSE_NS}"><pool id="${id}" default="true"/></http-connection-pools>`
  const empty = `<http-connection-pools xmlns="${REPOSE_NS}"/>`
  for (const [label, xml] of [['empty root, then a full one', `${empty}\n${full('b')}`], ['full root, then an empty one', `${full('a')}\n${empty}`]]) {
    const err = parseError(xml!)
    t.equal(err.errors.length, 1, label)
    t.equal(err.errors[0]!.line, 2, `${label}: line of the second root`)
    t.match(err.errors[0]!.message, /root/, `${label}: says there is more than one root`)
  }
})

t.test('an empty document is refused with a sensible message', async (t) => {
  for (const xml of ['', '   \n', '<?xml version="1.0"?>\n']) {
    const err = parseError(xml)
    t.equal(err.errors.length, 1)
    t.notMatch(err.message, 'undefined', `${JSON.stringify(xml)}: no "undefined" in the message`)
  }
})

t.test('"<" in an attribute value is not well-formed XML', async (t) => {
  // XML 1.0, WFC "No < in Attribute Values".
  const err = parseError(onePool('', '<headers><header name="X-A" value="a<b"/></headers>'))
  t.equal(err.errors.length, 1)
  t.equal(err.errors[0]!.line, 2)
})

t.test('billion laughs: a DOCTYPE is refused at once', async (t) => {
  const lol = '<?xml version="1.0"?>\n' +
    '<!DOCTYPE lolz [\n' +
    '  <!ENTITY lol "lol">\n' +
    Array.from({ length: 9 }, (_, i) => `  <!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">\n`).join('') +
    ']>\n' +
    wrap('<pool id="a" default="true"><headers><header name="X-Lol" value="&lol9;"/></headers></pool>')
  const { err, ms } = timedError(() => parseConfig(lol))
  t.ok(ms < 1000, `refused in ${ms.toFixed(1)} ms`)
  t.equal(err.errors.length, 1)
  t.match(err.message, 'DOCTYPE')
  t.equal(err.errors[0]!.line, 2, 'the line of the DOCTYPE')
  t.notMatch(err.message, 'lollol')
})

t.test('an external entity is never loaded', async (t) => {
  let passwd = ''
  try {
    passwd = readFileSync('/etc/passwd', 'utf8').split('\n')[0] ?? ''
  } catch {}
  const dir = t.testdir({ 'secret.txt': 'TOP-SECRET-FILE-CONTENT' })
  const docs = [
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' +
      wrap('<pool id="a" default="true"><headers><header name="X-E" value="&e;"/></headers></pool>'),
    `<!DOCTYPE x [<!ENTITY e SYSTEM "file://${join(dir, 'secret.txt')}">]>\n` +
      wrap('<pool id="a" default="true"><headers><header name="X-E" value="&e;"/></headers></pool>'),
    `<!DOCTYPE x [<!ENTITY % p SYSTEM "file://${join(dir, 'secret.txt')}"> %p;]>\n` + wrap('<pool id="a" default="true"/>'),
    `<!DOCTYPE http-connection-pools SYSTEM "http://127.0.0.1:1/pools.dtd">\n${wrap('<pool id="a" default="true"/>')}`,
    `<!-- harmless -->\n<!DOCTYPE http-connection-pools>\n${wrap('<pool id="a" default="true"/>')}`
  ]
  for (const xml of docs) {
    const { err, ms } = timedError(() => parseConfig(xml))
    t.ok(ms < 1000, `refused in ${ms.toFixed(1)} ms`)
    t.match(err.message, 'DOCTYPE')
    for (const text of [err.message, JSON.stringify(err.errors), String(err.stack)]) {
      if (passwd !== '') t.notMatch(text, passwd, 'no /etc/passwd content')
      t.notMatch(text, 'TOP-SECRET-FILE-CONTENT', 'no file content')
    }
  }
})

t.test('a DOCTYPE in a file is refused the same way', async (t) => {
  const dir = t.testdir({ 'pools.cfg.xml': `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n${wrap('<pool id="a" default="true"/>')}` })
  const err = await rejection(loadConfigFile(join(dir, 'pools.cfg.xml')))
  t.match(err.message, 'DOCTYPE')
  t.match(err.message, 'pools.cfg.xml')
})

t.test('more than 1 MiB is refused before parsing', async (t) => {
  const base = wrap('<pool id="a" default="true"/>')
  const padTo = (bytes: number, filler = ' '): string => base + filler.repeat(Math.ceil((bytes - Buffer.byteLength(base)) / Buffer.byteLength(filler)))

  t.test('a string one byte over', async (t) => {
    const xml = base + ' '.repeat(MiB + 1 - Buffer.byteLength(base))
    t.equal(Buffer.byteLength(xml), MiB + 1)
    const err = parseError(xml)
    t.equal(err.errors.length, 1)
    t.match(err.message, '1 MiB')
  })

  t.test('exactly 1 MiB is fine', async (t) => {
    const xml = base + ' '.repeat(MiB - Buffer.byteLength(base))
    t.equal(Buffer.byteLength(xml), MiB)
    t.equal(parseConfig(xml).defaultId, 'a')
  })

  t.test('bytes count, not characters', async (t) => {
    const xml = padTo(MiB + 2, '<!--\u00e9-->')
    t.ok(xml.length < MiB, 'fewer than 1 Mi characters')
    t.match(parseError(xml).message, '1 MiB')
  })

  t.test('size comes first: a huge malformed document is refused for its size', async (t) => {
    const xml = '<' + 'x'.repeat(2 * MiB)
    const { err, ms } = timedError(() => parseConfig(xml))
    t.match(err.message, '1 MiB')
    t.notMatch(err.message, /malformed/)
    t.ok(ms < 1000, `refused in ${ms.toFixed(1)} ms`)
  })

  t.test('a file over 1 MiB', async (t) => {
    const dir = t.testdir({})
    const file = join(dir, 'big.cfg.xml')
    writeFileSync(file, '<' + 'x'.repeat(4 * MiB))
    const err = await rejection(loadConfigFile(file))
    t.equal(err.errors.length, 1)
    t.match(err.message, '1 MiB')
    t.match(err.message, 'big.cfg.xml', 'names the file')
    t.notMatch(err.message, /malformed/, 'not parsed')
  })

  t.test('a huge file is refused without being read', async (t) => {
    // Sparse: takes no disk space, but reading it would mean 600 MiB of memory.
    const dir = t.testdir({})
    const file = join(dir, 'huge.cfg.xml')
    writeFileSync(file, '<')
    truncateSync(file, 600 * MiB)
    const start = performance.now()
    const err = await rejection(loadConfigFile(file))
    const ms = performance.now() - start
    t.match(err.message, '1 MiB')
    t.ok(ms < 1000, `refused in ${ms.toFixed(1)} ms`)
  })

  t.test('a file of exactly 1 MiB loads', async (t) => {
    const dir = t.testdir({})
    const file = join(dir, 'max.cfg.xml')
    writeFileSync(file, base + ' '.repeat(MiB - Buffer.byteLength(base)))
    t.equal((await loadConfigFile(file)).defaultId, 'a')
  })
})

t.test('10,000 pools parse in well under a second', async (t) => {
  const lines = ['<pool id="p0" default="true"/>']
  for (let i = 1; i < 10000; i++) lines.push(`<pool id="p${i}"/>`)
  const xml = wrap(lines.join('\n'))
  parseConfig(wrap('<pool id="warm" default="true"/>'))
  const start = performance.now()
  const { defaultId, pools } = parseConfig(xml)
  const ms = performance.now() - start
  t.ok(ms < 1000, `parsed in ${ms.toFixed(1)} ms`)
  t.equal(pools.length, 10000)
  t.equal(defaultId, 'p0')
  t.equal(pools[9999]!.id, 'p9999')
})

t.test('many errors are listed quickly', async (t) => {
  const lines = ['<pool id="p0" default="true"/>']
  for (let i = 1; i < 5000; i++) lines.push(`<pool id="p${i}" cache.ttl="x"/>`)
  const { err, ms } = timedError(() => parseConfig(wrap(lines.join('\n'))))
  t.equal(err.errors.length, 4999)
  t.ok(ms < 1000, `refused in ${ms.toFixed(1)} ms`)
})

t.test('a pool with as many attributes as fit in 1 MiB is handled in bounded time', async (t) => {
  // Finding each attribute's line must not cost time proportional to the
  // attributes before it: 1 MiB of attributes would otherwise take minutes.
  const attrs: string[] = []
  for (let i = 0; i < 30000; i++) attrs.push(`a${i}="1"`)
  const xml = onePool(attrs.join(' '))
  t.ok(Buffer.byteLength(xml) < MiB)
  const { err, ms } = timedError(() => parseConfig(xml))
  t.ok(err.errors.length >= 1)
  t.ok(ms < 2000, `refused in ${ms.toFixed(1)} ms`)
})

t.test('deep nesting is a ConfigError, not a crash', async (t) => {
  for (const depth of [50, 100, 1000, 100000]) {
    const xml = onePool('', '<headers>'.repeat(depth) + '</headers>'.repeat(depth))
    if (Buffer.byteLength(xml) > MiB) continue
    let err: unknown
    try {
      parseConfig(xml)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, `depth ${depth}: ${String(err)}`)
  }
})

t.test('many namespace declarations and headers parse', async (t) => {
  const decls = Array.from({ length: 2000 }, (_, i) => ` xmlns:p${i}="urn:example:${i}"`).join('')
  const headers = Array.from({ length: 5000 }, (_, i) => `<header name="X-${i}" value="${i}"/>`).join('\n')
  const start = performance.now()
  const { pools } = parseConfig(wrap(`<pool id="a" default="true"><headers>\n${headers}\n</headers></pool>`, decls))
  const ms = performance.now() - start
  t.equal(pools[0]!.headers.length, 5000)
  t.ok(ms < 1000, `parsed in ${ms.toFixed(1)} ms`)
})

// `fastify-http-pools check FILE`: effective settings with secrets masked when
// valid (exit 0); every error as FILE:LINE: pool "ID": ATTRIBUTE: MESSAGE when
// not (exit 1). Most assertions call check() with a captured output; the exit
// codes are checked on the built CLI (`npm test` builds it first).
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { check } from '../../lib/cli/check.js'
import { EXT_NS, FIXTURES, REPOSE_NS } from '../helpers/config.js'

const CLI = resolve(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js')
const FULL = join(FIXTURES, 'repose-full.cfg.xml')
const SECRET = 'Sup3rS3cr3t'

// FILE:LINE: pool "ID": ATTRIBUTE: MESSAGE (an attribute may have a prefix, the keystore rule names several).
const FORM = /^.+:\d+: pool "[^"]+": [\w.:-]+(, [\w.:-]+)*: \S.*$/

interface Captured { code: number, out: string[], err: string[] }

async function run (file: string): Promise<Captured> {
  const out: string[] = []
  const err: string[] = []
  const code = await check(file, { out: (l) => out.push(l), err: (l) => err.push(l) })
  return { code, out, err }
}

// The built CLI runs as a user runs it: without tap's loaders and coverage hooks.
const ENV = { ...process.env, NODE_OPTIONS: '' }

function cli (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: resolve(__dirname, '..', '..'), env: ENV })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

// A valid config full of secrets: passwords, proxy user-info, header values.
// check opens the keystores, so secret-client.jks and secret-trust.jks really
// have these passwords (see test/fixtures/config/README.md).
const SECRET_XML = [
  `<http-connection-pools xmlns="${REPOSE_NS}" xmlns:x="${EXT_NS}">`,
  `  <pool id="main" default="true" keystore-filename="secret-client.jks" keystore-password="${SECRET}-ks" key-password="${SECRET}-key"`,
  `        truststore-filename="secret-trust.jks" truststore-password="${SECRET}-ts"`,
  `        http.route.default-proxy="http://proxyuser${SECRET}:proxypass${SECRET}@proxy.local:3128"`,
  '        x:retry.max-attempts="2" cache.ttl="0">',
  `    <headers><header name="Authorization" value="Bearer ${SECRET}"/><header name="X-Api-Key" value="${SECRET}"/></headers>`,
  '  </pool>',
  '  <pool id="other"/>',
  '</http-connection-pools>'
].join('\n')

// Five problems, each with a line, a pool and an attribute; secrets nearby.
const INVALID_XML = [
  `<http-connection-pools xmlns="${REPOSE_NS}" xmlns:x="${EXT_NS}">`, // 1
  `  <pool id="one" default="true" cache.ttl="soon" keystore-password="${SECRET}"`, // 2
  '        keystore-filename="client.jks"/>', // 3
  '  <pool id="two"', // 4
  '        http.conn-manager.max-totl="5"', // 5
  `        http.route.default-proxy="http://u:${SECRET}@h:port"`, // 6
  '        x:retry.max-atempts="2"/>', // 7
  '  <pool id="three" http.tcp.nodelay="yes"/>', // 8
  '</http-connection-pools>'
].join('\n')

function secretDir (t: Test, xml: string): string {
  const dir = t.testdir({ 'pools.cfg.xml': xml })
  copyFileSync(join(FIXTURES, 'client.jks'), join(dir, 'client.jks'))
  copyFileSync(join(FIXTURES, 'servers.jks'), join(dir, 'servers.jks'))
  copyFileSync(join(FIXTURES, 'secret-client.jks'), join(dir, 'secret-client.jks'))
  copyFileSync(join(FIXTURES, 'secret-trust.jks'), join(dir, 'secret-trust.jks'))
  return dir
}

t.test('a valid file: every pool with its effective settings', async (t) => {
  const { code, out, err } = await run(FULL)
  t.equal(code, 0)
  t.same(err, [])
  const text = out.join('\n')
  t.match(out[0], 'default "default"', 'names the default pool')
  t.match(out[0], '2 pools')
  t.ok(out.includes('pool "default" (default)'), 'the default pool')
  t.ok(out.includes('pool "banana"'), 'the other pool')
  t.ok(out.indexOf('pool "default" (default)') < out.indexOf('pool "banana"'), 'in file order')
  for (const line of ['  http.route.default-proxy = http://example.com:80', '  keystore-filename = client.jks',
    '  keystore-password = ***', '  key-password = ***', '  truststore-password = ***', '  header foo: ***',
    '  http.conn-manager.max-total = 400', '  retry.max-attempts = 3', '  retry.statuses = 408,429,500,502,503,504',
    '  http.tcp.nodelay = true', '  tls.insecure = false']) {
    t.ok(out.includes(line), `prints ${JSON.stringify(line)}`)
  }
  t.notMatch(text, 'password = password', 'no password')
  t.notMatch(text, /foo: bar/, 'no header value')
  const banana = out.slice(out.indexOf('pool "banana"'))
  t.ok(banana.includes('  default = false'), 'banana: defaults filled in')
  t.ok(banana.includes('  cache.ttl = 500'))
  t.ok(banana.includes('  x:retry.max-attempts = 3') || banana.includes('  retry.max-attempts = 3'), 'extension defaults too')
})

t.test('a valid file with secrets: *** everywhere, the secret nowhere', async (t) => {
  const dir = secretDir(t, SECRET_XML)
  const { code, out, err } = await run(join(dir, 'pools.cfg.xml'))
  t.equal(code, 0, err.join('\n'))
  const text = out.join('\n')
  t.notMatch(text, SECRET)
  t.notMatch(text, 'proxyuser')
  t.notMatch(text, 'proxypass')
  for (const line of ['  keystore-password = ***', '  key-password = ***', '  truststore-password = ***',
    '  http.route.default-proxy = http://***@proxy.local:3128', '  header Authorization: ***', '  header X-Api-Key: ***',
    '  cache.ttl = 0', '  retry.max-attempts = 2']) {
    t.ok(out.includes(line), `prints ${JSON.stringify(line)}`)
  }
})

t.test('an invalid file: every error as FILE:LINE: pool "ID": ATTRIBUTE: MESSAGE', async (t) => {
  const dir = secretDir(t, INVALID_XML)
  const file = join(dir, 'pools.cfg.xml')
  const { code, out, err } = await run(file)
  t.equal(code, 1)
  t.same(out, [], 'nothing on stdout')
  const expected: [number, string, string][] = [
    [2, 'one', 'cache.ttl'],
    [2, 'one', 'key-password'],
    [5, 'two', 'http.conn-manager.max-totl'],
    [6, 'two', 'http.route.default-proxy'],
    [7, 'two', 'x:retry.max-atempts'],
    [8, 'three', 'http.tcp.nodelay']
  ]
  const problems = err.filter((l) => l.startsWith(`${file}:`) && /^.+:\d+: /.test(l))
  t.equal(problems.length, expected.length, err.join('\n'))
  for (const [line, pool, attribute] of expected) {
    t.ok(problems.some((l) => l.startsWith(`${file}:${line}: pool "${pool}": ${attribute}: `)), `${pool} ${attribute} at line ${line}`)
  }
  t.ok(problems.includes(`${file}:2: pool "one": key-password: IF a keystore filename, password, or key password is provided, THEN all must be provided`),
    'Repose\'s keystore message, verbatim')
  t.match(err[err.length - 1], /6 errors/, 'a summary at the end')
  for (const l of problems) t.match(l, FORM, `form of ${JSON.stringify(l)}`)
  t.notMatch(err.join('\n'), SECRET, 'no secret in the errors')
})

t.test('the cross-pool errors are printed in the same form', async (t) => {
  const dir = t.testdir({ 'pools.cfg.xml': `<http-connection-pools xmlns="${REPOSE_NS}">\n  <pool id="a" default="true"/>\n  <pool id="a" default="true"/>\n</http-connection-pools>` })
  const file = join(dir, 'pools.cfg.xml')
  const { code, err } = await run(file)
  t.equal(code, 1)
  t.ok(err.includes(`${file}:3: pool "a": id: Pools must have unique ids`), err.join('\n'))
  t.ok(err.includes(`${file}:3: pool "a": default: One and only one default pool must be defined`), err.join('\n'))
})

t.test('malformed XML is reported with the file and line', async (t) => {
  const dir = t.testdir({ 'pools.cfg.xml': `<http-connection-pools xmlns="${REPOSE_NS}">\n  <pool id="a" default="true">\n</http-connection-pools>\n` })
  const file = join(dir, 'pools.cfg.xml')
  const { code, err } = await run(file)
  t.equal(code, 1)
  t.ok(err.some((l) => l.startsWith(`${file}:3: `) && /column \d+/.test(l)), err.join('\n'))
})

t.test('a missing file', async (t) => {
  const file = join(t.testdir({}), 'nope.cfg.xml')
  const { code, out, err } = await run(file)
  t.equal(code, 1)
  t.same(out, [])
  t.ok(err.some((l) => l.startsWith(file) && /cannot read|does not exist|ENOENT|no such file/i.test(l)), err.join('\n'))
})

t.test('keystores resolve next to the checked file, not in the working directory', async (t) => {
  const cwd = process.cwd()
  t.teardown(() => process.chdir(cwd))
  process.chdir(t.testdir({}))
  const { code, err } = await run(FULL)
  t.equal(code, 0, err.join('\n'))
})

t.test('the built CLI', async (t) => {
  t.ok(existsSync(CLI), `${CLI} exists (npm test builds it)`)

  t.test('valid: exit 0, settings on stdout, no secret', async (t) => {
    const dir = secretDir(t, SECRET_XML)
    const r = cli('check', join(dir, 'pools.cfg.xml'))
    t.equal(r.status, 0, r.stderr)
    t.match(r.stdout, 'pool "main" (default)')
    t.match(r.stdout, 'pool "other"')
    t.match(r.stdout, 'keystore-password = ***')
    t.match(r.stdout, 'header Authorization: ***')
    t.match(r.stdout, 'http://***@proxy.local:3128')
    t.notMatch(r.stdout + r.stderr, SECRET)
  })

  t.test('the Repose example from another directory', async (t) => {
    const r = spawnSync(process.execPath, [CLI, 'check', FULL], { encoding: 'utf8', cwd: t.testdir({}), env: ENV })
    t.equal(r.status, 0, r.stderr)
    t.match(r.stdout, 'pool "banana"')
  })

  t.test('invalid: exit 1, every error on stderr', async (t) => {
    const dir = secretDir(t, INVALID_XML)
    const file = join(dir, 'pools.cfg.xml')
    const r = cli('check', file)
    t.equal(r.status, 1)
    t.equal(r.stdout, '')
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    const problems = lines.filter((l) => l.startsWith(`${file}:`) && /^.+:\d+: /.test(l))
    t.equal(problems.length, 6, r.stderr)
    for (const l of problems) t.match(l, FORM)
    t.ok(problems.some((l) => l.startsWith(`${file}:5: pool "two": http.conn-manager.max-totl: `)))
    t.ok(problems.some((l) => l.startsWith(`${file}:8: pool "three": http.tcp.nodelay: `)))
    t.notMatch(r.stderr, SECRET)
  })

  t.test('missing file: exit 1 with a clear message', async (t) => {
    const file = join(t.testdir({}), 'nope.cfg.xml')
    const r = cli('check', file)
    t.equal(r.status, 1)
    t.match(r.stderr, file)
    t.match(r.stderr, /cannot read|does not exist|ENOENT|no such file/i)
    t.notMatch(r.stderr, /^\s+at /m, 'no stack trace')
  })

  t.test('unknown command: exit 2 with the usage', async (t) => {
    for (const args of [['frobnicate'], ['check'], ['check', 'a.xml', 'b.xml']]) {
      const r = cli(...args)
      t.equal(r.status, 2, `${JSON.stringify(args)}: exit 2`)
      t.match(r.stderr, /Usage/, 'usage')
      t.match(r.stderr, 'check FILE')
      t.equal(r.stdout, '')
    }
  })
})

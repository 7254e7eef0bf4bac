// SPEC "Ecosystem" and "Package", from the outside: the packed package,
// installed into a consumer project (test/fixtures/consumer) beside an older
// fastify 5 minor than this project's own, type-checks strictly under module
// nodenext, node16, commonjs and bundler (default and named imports,
// fastify.pools, the pool and cacheKey route options, reply.from(),
// @fastify/http-proxy through a pool, and @ts-expect-error lines for wrong
// uses); the consumer has one fastify, its own, and both import and require
// decorate it at run time.
import { cpSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, TSC, built, npmInstall, pack, run, tempDir } from '../helpers/package.js'

const FIXTURE = join(ROOT, 'test', 'fixtures', 'consumer')
// Older than this project's own fastify: as a regular dependency, the plugin got a nested copy of its own.
const CONSUMER_FASTIFY = '5.3.3'
const MODES = ['nodenext', 'node16', 'commonjs', 'bundler']
// Packing, installing and four type checks take minutes on a busy machine.
t.setTimeout(600_000)

const XML = '<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v1.0"><pool id="default" default="true"/><pool id="banana"/></http-connection-pools>'

t.test('the packed package in a consumer project', { skip: built ? false : 'dist/ is not built (npm test builds it first)' }, async (t) => {
  const dir = tempDir(t, 'fhp-consumer-')
  cpSync(FIXTURE, dir, { recursive: true })
  const tarball = await pack(dir)
  await npmInstall(dir, [tarball, `fastify@${CONSUMER_FASTIFY}`, '@types/node@^22', '@fastify/http-proxy@^11.6.3'])

  t.test('one fastify, the consumer\'s: the plugin decorates and types the application\'s own copy', async (t) => {
    const r = await run('npm', ['ls', 'fastify', '--all', '--parseable'], dir)
    t.same(r.stdout.split('\n').filter((l) => l !== '').map((l) => l.slice(dir.length)), [join('/node_modules', 'fastify')], r.stdout + r.stderr)
  })

  t.test(`strict tsc under module ${MODES.join(', ')}`, async (t) => {
    // One tsc process checks the four projects (tsc -b), so the libraries' declarations are read once.
    const r = await run(process.execPath, [TSC, '-b', '--verbose', ...MODES.map((m) => `tsconfig.${m}.json`)], dir)
    t.equal(r.code, 0, 'no type error, and every @ts-expect-error line is an error')
    if (r.code !== 0) t.comment(r.stdout + r.stderr)
    for (const mode of MODES) t.match(r.stdout, `Building project '${join(dir, `tsconfig.${mode}.json`)}'`, `module ${mode} was checked`)
  })

  t.test('import and require both register the plugin on the consumer\'s fastify', async (t) => {
    const body = `const app = Fastify(); await app.register(pools, { xml: ${JSON.stringify(XML)} }); await app.ready();
      console.log(JSON.stringify({ ids: app.pools.ids, from: app.hasReplyDecorator('from'), named: pools === fastifyHttpPools })); await app.close()`
    const esm = await run(process.execPath, ['--input-type=module', '-e',
      `import Fastify from 'fastify'; import pools, { fastifyHttpPools } from 'fastify-http-pools'; ${body}`], dir)
    const cjs = await run(process.execPath, ['-e',
      `const Fastify = require('fastify'); const { default: pools, fastifyHttpPools } = require('fastify-http-pools'); (async () => { ${body} })()`], dir)
    for (const [kind, r] of [['import', esm], ['require', cjs]] as const) {
      t.equal(r.code, 0, `${kind}: ${r.stderr}`)
      t.same(JSON.parse(r.stdout || '{}'), { ids: ['default', 'banana'], from: true, named: true }, kind)
    }
  })
})

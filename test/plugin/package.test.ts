// SPEC "Package": the compiled package works through `require` and `import`,
// by path and by its own name (the `exports` map), with the same exports and
// one copy of every class. Needs dist/ (npm test builds it first).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import t from 'tap'
import { packedFiles } from '../helpers/package.js'

const ROOT = join(__dirname, '..', '..')
const CJS = join(ROOT, 'dist', 'index.js')
const ESM = join(ROOT, 'dist', 'index.mjs')
const built = existsSync(CJS) && existsSync(ESM)

type Exports = Record<string, unknown> & { default: unknown, ConfigError: new (...args: never[]) => Error }

// With module node16, TypeScript keeps import() as a real ESM import in CommonJS output.
const importESM = async (specifier: string): Promise<Exports> => await import(specifier) as Exports

t.test('require and import expose the same API', { skip: built ? false : 'dist/ is not built (npm test builds it first)' }, async (t) => {
  const cjs = require(CJS) as Exports
  const esm = await importESM(pathToFileURL(ESM).href)

  for (const [kind, mod] of [['require', cjs], ['import', esm]] as const) {
    t.type(mod.default, 'function', `${kind}: default is the plugin`)
    t.type(mod.fastifyHttpPools, 'function', `${kind}: fastifyHttpPools`)
    t.type(mod.parseConfig, 'function', `${kind}: parseConfig`)
    t.type(mod.ConfigError, 'function', `${kind}: ConfigError`)
    t.equal(mod.fastifyHttpPools, mod.default, `${kind}: fastifyHttpPools is the default export`)
    const meta = (mod.default as Record<symbol, { name?: string } | undefined>)[Symbol.for('plugin-meta')]
    t.equal(meta?.name, 'fastify-http-pools', `${kind}: wrapped by fastify-plugin, named fastify-http-pools`)
  }
  t.equal(esm.ConfigError, cjs.ConfigError, 'one ConfigError class through both')
  t.equal(esm.default, cjs.default, 'one plugin through both')
  t.equal(esm.parseConfig, cjs.parseConfig)

  // An error thrown by one is recognised by the other's class.
  const parse = esm.parseConfig as (xml: string) => unknown
  t.throws(() => parse('<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v1.0"/>'), cjs.ConfigError)
})

t.test('the package resolves by its own name through the exports map', { skip: built ? false : 'dist/ is not built' }, async (t) => {
  t.equal(require.resolve('fastify-http-pools'), CJS, 'require → dist/index.js')
  const esm = await importESM('fastify-http-pools')
  const cjs = require('fastify-http-pools') as Exports
  t.equal(esm.ConfigError, cjs.ConfigError)
  t.equal(esm.default, cjs.default)
})

t.test('the built plugin registers and decorates fastify.pools', { skip: built ? false : 'dist/ is not built' }, async (t) => {
  const esm = await importESM(pathToFileURL(ESM).href)
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(esm.default as never)
  await app.ready()
  const pools = (app as unknown as { pools: { ids: string[], defaultId: string } }).pools
  t.same(pools.ids, ['default'])
  t.equal(pools.defaultId, 'default')
})

// What a user needs and nothing else: the compiled code with its declarations,
// the example config that `serve` uses, and the documents.
const PUBLISHED_DOCS = ['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json', 'config/http-connection-pool.cfg.xml']

t.test('npm pack publishes the compiled code, its declarations, the example config and the documents only', { skip: built ? false : 'dist/ is not built' }, async (t) => {
  const files = await packedFiles()
  const stray = files.filter((f) => !PUBLISHED_DOCS.includes(f) && !/^dist\/.+\.(js|d\.ts|mjs|d\.mts)$/.test(f))
  t.same(stray, [], 'nothing else')
  t.same(files.filter((f) => /test/i.test(f)), [], 'no tests, compiled or not')
  t.same(files.filter((f) => f.endsWith('.map')), [], 'no source maps (their sources are not published)')
  for (const f of [...PUBLISHED_DOCS, 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'dist/lib/cli/main.js', 'dist/types/augment.d.ts']) {
    t.ok(files.includes(f), `publishes ${f}`)
  }
  const js = files.filter((f) => f.endsWith('.js'))
  t.same(js.filter((f) => !files.includes(f.replace(/\.js$/, '.d.ts'))), [], 'every compiled module has its declarations')
})

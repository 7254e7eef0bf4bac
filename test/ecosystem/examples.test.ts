// The examples (examples/*) as a user runs them: each project installed on its
// own, with the package it depends on by relative path (file:../..) given as
// the tarball npm makes of it, type-checked with its own `npm run typecheck`,
// started with its own start script, and a request of each kind sent through.
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startNode } from '../helpers/cli.js'
import { get, upstream } from '../helpers/loopback.js'
import { ROOT, built, npmInstall, pack, run, tempDir, userEnv } from '../helpers/package.js'

// Packing, two installs and two type checks take minutes on a busy machine.
t.setTimeout(600_000)

const EXAMPLES = ['typescript-esm', 'commonjs']

interface Manifest { dependencies: Record<string, string>, scripts: Record<string, string> }

t.test('the examples install, type-check, start and forward', { skip: built ? false : 'dist/ is not built (npm test builds it first)' }, async (t) => {
  const dir = tempDir(t, 'fhp-examples-')
  const tarball = await pack(dir)
  for (const name of EXAMPLES) {
    t.test(name, async (t) => {
      const project = join(dir, name)
      cpSync(join(ROOT, 'examples', name), project, { recursive: true, filter: (src) => !src.includes('node_modules') })
      const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as Manifest
      t.equal(manifest.dependencies['fastify-http-pools'], 'file:../..', 'the example depends on the package by relative path')
      // What file:../.. with the example's install-links=true installs: the package as npm packs it.
      manifest.dependencies['fastify-http-pools'] = `file:${tarball}`
      writeFileSync(join(project, 'package.json'), JSON.stringify(manifest, null, 2))
      await npmInstall(project)

      const ls = await run('npm', ['ls', 'fastify', '--all', '--parseable'], project)
      t.equal(ls.stdout.trim().split('\n').length, 1, `one fastify: ${ls.stdout}`)

      const typecheck = await run('npm', ['run', 'typecheck'], project)
      t.equal(typecheck.code, 0, `npm run typecheck: ${typecheck.stdout}${typecheck.stderr}`)

      const up = await upstream(t)
      const [command, ...args] = manifest.scripts.start!.split(' ')
      t.equal(command, 'node', 'npm start runs node')
      const gw = await startNode(t, args, { cwd: project, env: userEnv({ ORIGIN: up.origin, PORT: '0' }), ready: /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/ })

      const fruit = await get(`${gw.url}/fruit/apple?x=1`)
      t.equal(fruit.statusCode, 200)
      t.match(fruit.json(), { method: 'GET', url: '/fruit/apple?x=1', headers: { 'x-pool': 'banana' } }, '/fruit/* through pool banana')
      const xml = '<order  id="1">é</order>'
      const posted = await get(`${gw.url}/orders`, { method: 'POST', body: xml, headers: { 'content-type': 'application/xml' } })
      t.equal(posted.statusCode, 200, 'an XML body is forwarded, not refused with 415')
      t.match(posted.json(), { method: 'POST', url: '/orders', body: xml, headers: { 'content-type': 'application/xml' } }, 'unchanged')
      t.equal(posted.json().headers['x-pool'], undefined, 'through the default pool')
      const pools = await get(`${gw.url}/gateway/pools`)
      t.match(pools.json(), { pools: ['default', 'banana'], stats: { banana: { requests: 1 }, default: { requests: 1 } } })

      gw.child.kill('SIGTERM')
      t.equal(await gw.exited, 0, 'SIGTERM: a clean exit')
    })
  }
})

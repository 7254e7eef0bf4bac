// SPEC "Nothing leaks": any pool id without a control character works
// everywhere: routes, forwarding, stats(), reload logs and `check`, ids such
// as `__proto__` or `constructor` included (an object keyed by them must not
// take them for its prototype's members).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { check } from '../../lib/cli/check.js'
import { gateway, pool, config } from '../helpers/resilience.js'
import { upstream } from '../helpers/loopback.js'

const IDS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'é-ü']

const xml = (ttl: number): string => config(...IDS.map((id, i) => pool(id, { ...(i === 0 ? { default: 'true', 'cache.ttl': ttl } : {}), 'x:retry.max-attempts': 1 })))

t.test('ids that are Object.prototype member names carry requests and show in stats() and logs', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, xml(500), 'info')
  for (const id of IDS) {
    const res = await gw.forward(encodeURIComponent(id), `${up.origin}/${encodeURIComponent(id)}`)
    t.equal(res.statusCode, 200, `${id}: forwarded`)
  }
  const stats = gw.app.pools.stats()
  t.same(Object.keys(stats), IDS, 'every id is an own key of stats(), in file order')
  for (const id of IDS) t.equal(Object.getOwnPropertyDescriptor(stats, id)?.value.requests, 1, `${id}: its request is counted`)
  t.equal(Object.getPrototypeOf(stats), Object.prototype, 'stats() is a plain object')
  t.same(Object.keys(JSON.parse(JSON.stringify(stats))), IDS, 'and so is its JSON')

  await gw.app.pools.reload({ xml: xml(1000) })
  const reloaded = gw.logs.find((l) => /config reloaded/.test(l.msg ?? ''))
  t.ok(reloaded, 'the reload is logged')
  t.same(Object.keys(reloaded?.pools as object), IDS, 'the reload log names every pool')
  t.equal(Object.getOwnPropertyDescriptor(reloaded?.pools, '__proto__')?.value, 'changed: cache.ttl', 'and what changed in __proto__')
})

t.test('check prints each of them', async (t) => {
  const file = join(t.testdir(), 'ids.cfg.xml')
  writeFileSync(file, xml(500))
  const out: string[] = []
  t.equal(await check(file, { out: (l) => out.push(l), err: (l) => out.push(l) }), 0)
  for (const id of IDS) t.ok(out.some((l) => l.startsWith(`pool "${id}"`)), `pool "${id}" is printed`)
})

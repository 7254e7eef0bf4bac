// `watch: true` must end up serving what the file holds. Here the file is
// rewritten in place in short bursts (A, B, A, B...) while the gateway's event
// loop is busy, as it is under load; after each burst the file's config must
// become live, and stay so with no further change to the file. A file over
// 1 MiB is refused before it is read (SPEC "Nothing leaks").
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { BOUND_MS, clientAgent, config, fetchOutcome, gateway, now, pool, upstream, waitFor } from '../helpers/lifecycle.js'

// The watcher must apply the very content it compared: were the file read
// again for the reload, a write between the two reads would be applied while
// the older content was remembered, and a write back to it then missed.

t.test('watch: after each burst of in-place writes, the config in the file is the live one (event loop busy)', async (t) => {
  const ROUNDS = 12
  // Four poll intervals of the watcher's stat poll (250 ms), and more.
  const CONVERGE_MS = 1500
  const dir = mkdtempSync(join(tmpdir(), 'fhp-watch-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'http-connection-pool.cfg.xml')
  const xml = (value: string): string => config(pool('main', { default: 'true' }, { 'x-config': value }))
  writeFileSync(file, xml('start'))
  const gw = await gateway(t, { plugin: { config: file, watch: true }, routes: {}, level: 'warn' })
  const live = (): string => gw.app.pools.get('main').settings.headers[0]!.value

  // A loaded gateway: each turn of the event loop does 3 ms of work.
  let busy = true
  const spin = (): void => {
    const until = Date.now() + 3
    while (Date.now() < until);
    if (busy) setImmediate(spin)
  }
  setImmediate(spin)
  t.teardown(() => { busy = false })

  const GAPS_MS = [15, 40, 25, 30, 20, 35]
  const missed: string[] = []
  const end = now() + 25_000
  let round = 0
  for (; round < ROUNDS && now() < end && missed.length === 0; round++) {
    let last = ''
    for (let i = 0; i < 4; i++) {
      last = (round + i) % 2 === 0 ? 'A' : 'B'
      writeFileSync(file, xml(last))
      await new Promise((resolve) => setTimeout(resolve, GAPS_MS[(round + i) % GAPS_MS.length]))
    }
    try {
      await waitFor(() => live() === last, CONVERGE_MS, 'the file\'s config')
    } catch {
      missed.push(`round ${round + 1}: the file holds ${last}, the gateway serves ${live()} ${CONVERGE_MS} ms after the last write`)
    }
    // Bytes the watcher has never seen: always reloaded, so the next round starts in step.
    writeFileSync(file, xml(`reset-${round}`))
    await waitFor(() => live() === `reset-${round}`, BOUND_MS, `reset ${round} to be applied`)
  }
  busy = false
  t.same(missed, [], `after each burst the file's config became live (${round} rounds)`)
})

t.test('watch: a file over 1 MiB is refused unread, and the pools keep serving', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fhp-watch-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'http-connection-pool.cfg.xml')
  const xml = (value: string): string => config(pool('main', { default: 'true' }, { 'x-config': value }))
  writeFileSync(file, xml('before'))
  const up = await upstream(t, (req, res) => { res.end(String(req.headers['x-config'])) })
  const gw = await gateway(t, { plugin: { config: file, watch: true }, routes: { '/': { pool: 'main', to: `${up.origin}/` } } })
  const agent = clientAgent(t)

  // 256 MiB of holes: nothing on disk, but reading it would take 256 MiB of memory, and more as text.
  const peakBefore = process.resourceUsage().maxRSS
  truncateSync(file, 256 * 1024 * 1024)
  await waitFor(() => /larger than the 1 MiB limit/.test(gw.app.pools.stats().main!.lastReloadError ?? ''), BOUND_MS, 'the large file to be refused')
  const grownMiB = (process.resourceUsage().maxRSS - peakBefore) / 1024
  t.ok(grownMiB < 64, `the file was not read: the peak memory grew by ${grownMiB.toFixed(0)} MiB`)
  t.match(gw.logs.find((l) => /config reload rejected/.test(l.msg ?? ''))?.msg, new RegExp(`${file}: config is 268435456 bytes, larger than the 1 MiB limit`), 'the refusal is logged, naming the file')
  const served = await fetchOutcome(agent, `${gw.url}/`, 0)
  t.same([served.statusCode, served.body], [200, 'before'], 'the running pools keep serving')

  writeFileSync(file, xml('after'))
  await waitFor(() => gw.app.pools.get('main').settings.headers[0]!.value === 'after', BOUND_MS, 'the next valid content to be applied')
  t.equal(gw.app.pools.stats().main!.lastReloadError, null, 'and the refusal is over')
})

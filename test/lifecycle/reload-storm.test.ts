// Reloads under load. `watch: true` on a config file that is rewritten every
// 100 ms (renamed into place, or written in place) while 50 clients send
// requests: no request fails, each one is carried by a config that was live
// while it ran, the last config wins, and no replaced dispatcher is left open.
// Then a pools.reload() storm: afterwards nothing runs and only the current
// pools hold connections.
import { renameSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { BOUND_MS, clientAgent, config, failures, fetchOutcome, gateway, load, now, pool, upstream, waitFor, type Outcome } from '../helpers/lifecycle.js'

const ERROR = 50

/** TCP sockets of the process (client and server sides alike). */
const tcpSockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length

/** The two configs of the storm: `main` differs (header, limits, timeout); `steady` does not; `extra` exists in A only. */
function configs (): { A: string, B: string, INVALID: string } {
  const noRetry = { 'x:retry.max-attempts': '1' }
  const steady = pool('steady', { ...noRetry, 'http.conn-manager.max-per-route': '5' })
  const A = config(
    pool('main', { default: 'true', ...noRetry, 'http.conn-manager.max-total': '16', 'http.conn-manager.max-per-route': '8', 'http.socket.timeout': '10000' }, { 'x-config': 'A' }),
    steady,
    pool('extra', noRetry))
  const B = config(
    pool('main', { default: 'true', ...noRetry, 'http.conn-manager.max-total': '64', 'http.conn-manager.max-per-route': '32', 'http.socket.timeout': '20000' }, { 'x-config': 'B' }),
    steady)
  // Line 2: `main` with a value of the wrong type.
  const INVALID = config(
    pool('main', { default: 'true', ...noRetry, 'http.socket.timeout': 'later' }, { 'x-config': 'X' }),
    steady)
  return { A, B, INVALID }
}

t.test('watch: 50 clients for 10 s while the file changes every 100 ms: no failure, every response from a live config, no dispatcher left open', async (t) => {
  const STORM_MS = 10_000
  const TICK_MS = 100
  const CLIENTS = 50
  const STEADY_CLIENTS = 5
  const { A, B, INVALID } = configs()
  const dir = mkdtempSync(join(tmpdir(), 'fhp-storm-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'http-connection-pool.cfg.xml')
  writeFileSync(file, A)

  const echo = (req: { headers: Record<string, unknown> }, res: { setHeader: (n: string, v: string) => void, end: (b: string) => void }): void => {
    res.setHeader('x-config-seen', String(req.headers['x-config'] ?? 'none'))
    res.end('ok')
  }
  const mainUp = await upstream(t, echo)
  const steadyUp = await upstream(t, echo)
  const socketsBefore = tcpSockets()

  // When each config became live: the registry logs a reload right after it swapped the pools.
  const applied: Array<{ at: number, header: string }> = [{ at: -Infinity, header: 'A' }]
  let current: () => string = () => 'A'
  const gw = await gateway(t, {
    plugin: { config: file, watch: true },
    routes: { '/main': { pool: 'main', to: `${mainUp.origin}/main` }, '/steady': { pool: 'steady', to: `${steadyUp.origin}/steady` } },
    onLog: (line) => { if (/^config reloaded/.test(line.msg ?? '')) applied.push({ at: now(), header: current() }) }
  })
  const pools = gw.app.pools
  current = () => pools.get('main').settings.headers.find((h) => h.name === 'x-config')!.value
  const steadyDispatcher = pools.entryFor('steady').dispatcher
  const agent = clientAgent(t)

  // The writer: A and B by turns, renamed into place or (every third write) written in place, one invalid write mid-way.
  const writes: Array<{ at: number, version: string, how: string }> = []
  let writing = true
  const writer = (async () => {
    const start = now()
    let i = 0
    while (now() - start < STORM_MS) {
      i++
      const invalid = i === Math.round(STORM_MS / TICK_MS / 2)
      const version = invalid ? 'invalid' : i % 2 === 0 ? 'A' : 'B'
      const content = invalid ? INVALID : version === 'A' ? A : B
      const how = i % 3 === 0 ? 'in place' : 'rename'
      if (how === 'rename') {
        const tmp = `${file}.${i}.tmp`
        writeFileSync(tmp, content)
        renameSync(tmp, file)
      } else {
        writeFileSync(file, content)
      }
      writes.push({ at: now(), version, how })
      // The invalid file stays a little longer, so that the watcher surely reads it.
      await new Promise((resolve) => setTimeout(resolve, invalid ? 3 * TICK_MS : TICK_MS))
    }
    // The final config: B (A has the extra pool), with a comment that makes its bytes new to the
    // watcher: whether the watcher misses a change back to content it read before is
    // watch.test.ts's question, not this one's.
    writeFileSync(file, `${B}<!-- final -->\n`)
    writes.push({ at: now(), version: 'B', how: 'in place' })
  })().finally(() => { writing = false })

  const outcomes = await load({
    loops: CLIENTS,
    durationMs: STORM_MS + 5000,
    maxRequests: 500_000,
    until: () => !writing,
    send: async (i) => await fetchOutcome(agent, `${gw.url}${i < STEADY_CLIENTS ? '/steady' : '/main'}`, i)
  })
  await writer

  t.equal(failures(outcomes), `0 of ${outcomes.length} failed`, 'no request failed')
  const main = outcomes.filter((o) => o.loop >= STEADY_CLIENTS)
  t.ok(main.length >= 500, `the clients kept going (${outcomes.length} requests)`)
  t.ok(writes.length >= 50, `the file changed every ${TICK_MS} ms (${writes.length} writes, ${writes.filter((w) => w.how === 'in place').length} in place)`)
  t.ok(applied.length >= 20, `the gateway applied many of them (${applied.length - 1} reloads)`)
  const rejected = gw.logs.filter((l) => l.level === ERROR && /config reload rejected/.test(l.msg ?? ''))
  t.ok(rejected.some((l) => /http\.socket\.timeout/.test(l.msg ?? '') && l.msg!.includes(`${file}:2`)), 'the invalid write was rejected, naming file:line and attribute')

  // A response carries the header of the config live when it was sent, or of one that became live while it ran.
  const allowed = (o: Outcome): Set<string> => {
    let i = applied.length - 1
    while (applied[i]!.at > o.sentAt) i--
    const ok = new Set([applied[i]!.header])
    for (const a of applied) if (a.at > o.sentAt && a.at <= o.doneAt) ok.add(a.header)
    return ok
  }
  const headers = main.map((o) => String(o.headers?.['x-config-seen']))
  t.same([...new Set(headers)].sort(), ['A', 'B'], 'responses came from both configs, and only those')
  const wrong = main.filter((o) => !allowed(o).has(String(o.headers?.['x-config-seen'])))
  t.same(wrong.slice(0, 5).map((o) => ({ seen: o.headers?.['x-config-seen'], allowed: [...allowed(o)], sentAt: o.sentAt.toFixed(1), doneAt: o.doneAt.toFixed(1) })), [],
    `every response came from a config live while it ran (${wrong.length} did not)`)
  t.ok(outcomes.filter((o) => o.loop < STEADY_CLIENTS).every((o) => o.headers?.['x-config-seen'] === 'none'), 'the steady pool sends no x-config')

  // The last write wins once the watcher has seen it.
  await waitFor(() => current() === 'B' && applied.at(-1)!.at > writes.at(-1)!.at, BOUND_MS,
    () => `the final config to be applied (live: ${current()}; the last writes: ${writes.slice(-3).map((w) => `${w.version} ${w.how} at ${w.at.toFixed(0)}`).join(', ')}; the last reloads: ${applied.slice(-3).map((a) => `${a.header} at ${a.at.toFixed(0)}`).join(', ')}; now ${now().toFixed(0)})`)
  const after = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => await fetchOutcome(agent, `${gw.url}/main`, i)))
  t.equal(failures(after), `0 of ${CLIENTS} failed`)
  t.same([...new Set(after.map((o) => o.headers?.['x-config-seen']))], ['B'], 'after the final write, responses carry its header')
  t.equal(pools.has('extra'), false, 'the pool that only A has is gone')
  t.equal(pools.get('main').settings['http.conn-manager.max-per-route'], 32)

  t.equal(pools.entryFor('steady').dispatcher, steadyDispatcher, 'the pool that never changed kept its dispatcher through every reload')
  t.ok(steadyUp.conns.length <= STEADY_CLIENTS, `and its connections (its upstream saw ${steadyUp.conns.length})`)

  // Replaced dispatchers finish their requests, then close: only the current pools hold connections.
  await waitFor(() => Object.values(pools.stats()).every((s) => s.running === 0 && s.pending === 0 && s.queued === 0), BOUND_MS, 'every pool to be idle')
  await waitFor(() => mainUp.open().length <= pools.stats().main!.connected, BOUND_MS,
    () => `the replaced dispatchers to close their connections (upstream: ${mainUp.open().length} open, current pool: ${pools.stats().main!.connected})`)
  t.pass(`${mainUp.conns.length} connections over the storm; only the current pool's remain open`)

  await gw.app.close()
  await agent.close()
  await Promise.all([mainUp.allEnded(), steadyUp.allEnded()])
  t.pass('after close(), the upstreams saw every connection end')
  await waitFor(() => tcpSockets() <= socketsBefore, BOUND_MS, () => `no TCP socket left beyond the test's own (${tcpSockets()} open, ${socketsBefore} before the gateway)`)
  t.pass('no TCP socket is left open')
})

t.test('a pools.reload() storm under load leaves no replaced dispatcher running or connected', async (t) => {
  const up = await upstream(t, (_req, res) => { res.end('ok') })
  const variant = (n: number): string => config(pool('main', {
    default: 'true',
    'x:retry.max-attempts': '1',
    'http.conn-manager.max-per-route': String(4 + (n % 4)),
    'http.socket.timeout': String(10000 + n)
  }, { 'x-config': `v${n}` }))
  const gw = await gateway(t, { plugin: { xml: variant(0) }, routes: { '/main': { pool: 'main', to: `${up.origin}/main` } }, level: 'warn' })
  const agent = clientAgent(t)
  const pools = gw.app.pools

  let reloads = 0
  let storming = true
  const storm = (async () => {
    const end = now() + 2000
    while (now() < end && reloads < 500) {
      await pools.reload({ xml: variant(++reloads) })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })().finally(() => { storming = false })
  const outcomes = await load({ loops: 20, durationMs: 5000, maxRequests: 200_000, until: () => !storming, send: async (i) => await fetchOutcome(agent, `${gw.url}/main`, i) })
  await storm

  t.equal(failures(outcomes), `0 of ${outcomes.length} failed`, 'no request failed')
  t.ok(reloads >= 20, `${reloads} reloads`)
  t.equal(pools.stats().main!.reloads, reloads)
  t.ok(up.conns.length > 20, `the reloads replaced the connections (${up.conns.length} in all)`)

  await waitFor(() => {
    const s = pools.stats().main!
    return s.running === 0 && s.pending === 0 && s.queued === 0
  }, BOUND_MS, 'the pool to be idle')
  t.match(pools.stats().main, { running: 0, pending: 0, queued: 0 }, 'stats: nothing running or waiting')
  await waitFor(() => up.open().length <= pools.stats().main!.connected, BOUND_MS,
    () => `the replaced dispatchers to close their connections (upstream: ${up.open().length} open, current pool: ${pools.stats().main!.connected})`)
  t.pass('only the current dispatcher holds connections')

  await gw.app.close()
  await up.allEnded()
  t.pass('after close(), the upstream saw every socket end')
})

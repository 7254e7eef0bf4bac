// Issue 15, item 10, and README "max-total across a reload": a replaced pool
// keeps only the connections its exchanges in flight hold (its idle ones close
// at once), so the origin sees at most max-total connections of the new pool
// plus those still busy in the old one, and never more than twice max-total.
import t from 'tap'
import { config, eventually, gateway, pool } from '../helpers/resilience.js'
import { BOUND_MS, httpServer } from '../helpers/wire.js'

async function until (what: string, check: () => boolean): Promise<void> {
  if (!await eventually(check, BOUND_MS)) throw new Error(`timed out waiting for ${what}`)
}

const MAX = 3
const xml = (timeout: number): string => config(pool('p', { default: 'true', 'http.conn-manager.max-total': MAX, 'http.conn-manager.max-per-route': MAX, 'http.socket.timeout': timeout }))

t.test('across a reload the origin sees at most max-total new connections plus the old ones still busy', async (t) => {
  const gates: Array<() => void> = []
  const up = await httpServer(t, (req, res) => {
    if (req.url!.startsWith('/hold')) gates.push(() => res.end('held'))
    else res.end('ok')
  })
  const gw = await gateway(t, xml(10000))
  // Three idle keep-alive connections, then two of them busy with held requests.
  await Promise.all(Array.from({ length: MAX }, async () => await gw.forward('p', `${up.origin}/`)))
  t.equal(up.tracker.open, MAX)
  const oldHeld = [gw.forward('p', `${up.origin}/hold`), gw.forward('p', `${up.origin}/hold`)]
  await until('two held requests', () => gates.length === 2)

  await gw.app.pools.reload({ xml: xml(20000) })
  await until('the old pool\'s idle connection to close at once', () => up.tracker.open === 2)
  const newHeld = Array.from({ length: MAX }, async () => await gw.forward('p', `${up.origin}/hold`))
  await until('the new pool\'s requests to arrive', () => gates.length === 2 + MAX)
  t.equal(up.tracker.open, MAX + 2, 'the new pool\'s max-total plus the old one\'s two busy connections')
  for (const open of gates.splice(0)) open()
  for (const r of await Promise.all([...oldHeld, ...newHeld])) t.equal(r.statusCode, 200)
  await until('the old pool to let its last connections go', () => up.tracker.open <= MAX)
  t.ok(up.tracker.maxOpen <= 2 * MAX, `never more than twice max-total (${up.tracker.maxOpen})`)
})

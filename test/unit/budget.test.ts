// http.conn-manager.max-total (SPEC "The XML file"): the connection budget
// across a pool's origins. Its connects and sockets are stand-ins here, so
// every ordering can be driven by hand; test/pool proves it on real sockets.
import t from 'tap'
import type { Client } from 'undici'
import { ConnectionBudget, type ConnectCallback } from '../../lib/pool/budget.js'
import { FakeClient, FakeSocket } from '../helpers/fake-socket.js'

/** A base connector whose connects the test completes by hand. */
function base () {
  const connects: ConnectCallback[] = []
  const connector = (_options: object, callback: ConnectCallback): void => { connects.push(callback) }
  return { connects, connector }
}

function connectorFor (budget: ConnectionBudget, b: ReturnType<typeof base>) {
  const client = new FakeClient()
  const sockets: FakeSocket[] = []
  const results: Array<Error | null> = []
  const connect = budget.connector(() => client as unknown as Client, b.connector, () => {})
  return {
    client,
    sockets,
    results,
    connect: () => connect({}, (err, socket) => {
      results.push(err)
      if (socket) sockets.push(socket as unknown as FakeSocket)
    })
  }
}

/** A budget of 1 whose only socket is busy, and a second client's connect waiting for it. */
function full () {
  const budget = new ConnectionBudget(1)
  const b = base()
  const one = connectorFor(budget, b)
  const two = connectorFor(budget, b)
  one.connect()
  b.connects[0]!(null, new FakeSocket().asSocket)
  one.client.stats.running = 1
  two.connect()
  return { budget, b, one, two }
}

const flush = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('at the cap a connect waits, and takes the slot a closing socket gives back', async (t) => {
  const { budget, b, one } = full()
  t.equal(b.connects.length, 1, 'the second connect waits: the budget is full')
  t.equal(budget.waiting, 1)
  one.sockets[0]!.destroy()
  t.equal(b.connects.length, 2, 'the freed slot went to the waiting connect')
  t.equal(budget.waiting, 0)
  t.equal(budget.open, 1)
})

t.test('at the cap an idle socket of another client is closed to make room; a busy one is not', async (t) => {
  const budget = new ConnectionBudget(2)
  const b = base()
  const busy = connectorFor(budget, b)
  const idle = connectorFor(budget, b)
  const waiting = connectorFor(budget, b)
  busy.connect()
  idle.connect()
  b.connects[0]!(null, new FakeSocket().asSocket)
  b.connects[1]!(null, new FakeSocket().asSocket)
  busy.client.stats.running = 1
  waiting.connect()
  t.equal(busy.sockets[0]!.destroyed, false, 'the busy socket stays')
  t.equal(idle.sockets[0]!.destroyed, true, 'the idle one was closed')
  t.equal(b.connects.length, 3, 'and the waiting connect went ahead')
})

t.test('poke: a socket that becomes idle later is closed for a waiting connect', async (t) => {
  const { budget, b, one } = full()
  one.client.stats.running = 0
  budget.poke()
  await flush()
  t.equal(one.sockets[0]!.destroyed, true)
  t.equal(b.connects.length, 2)
})

t.test('a failed connect gives its slot back', async (t) => {
  const budget = new ConnectionBudget(1)
  const b = base()
  const one = connectorFor(budget, b)
  one.connect()
  b.connects[0]!(new Error('refused'), null)
  t.equal(budget.open, 0)
  t.same(one.results.map((e) => e?.message), ['refused'])
})

t.test('close fails every waiting connect and refuses new ones', async (t) => {
  const { budget, b, two } = full()
  budget.close()
  t.equal(two.results[0]?.name, 'ClientDestroyedError')
  t.equal(budget.waiting, 0)
  const three = connectorFor(budget, b)
  three.connect()
  t.equal(three.results[0]?.name, 'ClientDestroyedError')
  t.equal(b.connects.length, 1, 'nothing more was connected')
})

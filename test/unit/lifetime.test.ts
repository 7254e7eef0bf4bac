// x:connection.max-lifetime (SPEC "Extensions"): a socket older than its
// lifetime closes once idle, never during a request; jitter only shortens.
// On a clock the test moves; test/lifecycle proves rotation on the wire.
import t from 'tap'
import { ConnectionLifetime } from '../../lib/pool/lifetime.js'
import { ManualClock } from '../helpers/clock.js'
import { FakeClient, FakeSocket } from '../helpers/fake-socket.js'

const LIFE = 200

function tracked (random = 0) {
  const clock = new ManualClock()
  const lifetime = new ConnectionLifetime(LIFE, () => random, clock)
  const client = new FakeClient()
  const socket = new FakeSocket()
  lifetime.track(client, socket.asSocket)
  return { clock, lifetime, client, socket }
}

t.test('an idle socket closes at its lifetime, with no request to notice it', async (t) => {
  const { clock, socket } = tracked()
  clock.advance(LIFE - 1)
  t.equal(socket.destroyed, false, '1 ms before: open')
  clock.advance(1)
  t.equal(socket.destroyed, true, 'at the lifetime: closed')
  t.equal(clock.pending, 0)
})

t.test('a timer that fires early by the clock is armed again: the idle socket never outlives its lifetime', async (t) => {
  const { clock, socket } = tracked()
  clock.advance(LIFE - 1)
  clock.fireEarly(1)
  t.equal(socket.destroyed, false, 'fired 1 ms early: not expired yet, so not closed')
  t.equal(clock.pending, 1, 'but armed again for what is left')
  clock.advance(1)
  t.equal(socket.destroyed, true, 'closed on time')
})

t.test('a busy socket is never closed during its request; it closes when it becomes idle', async (t) => {
  const { clock, lifetime, client, socket } = tracked()
  client.stats.running = 1
  clock.advance(LIFE * 3)
  t.equal(socket.destroyed, false, 'past its lifetime, but a request is on it')
  client.stats.running = 0
  lifetime.check(client)
  t.equal(socket.destroyed, true, 'closed when the request ended')
})

t.test('check before the lifetime leaves the socket open for reuse', async (t) => {
  const { clock, lifetime, client, socket } = tracked()
  clock.advance(LIFE / 2)
  lifetime.check(client)
  t.equal(socket.destroyed, false)
})

t.test('jitter shortens a lifetime by up to 10%, never lengthens it', async (t) => {
  const { clock, socket } = tracked(1)
  clock.advance(LIFE * 0.9 - 1)
  t.equal(socket.destroyed, false)
  clock.advance(1)
  t.equal(socket.destroyed, true, 'the most jitter: 90% of the lifetime')
})

t.test('a socket that closes by itself cancels its timer', async (t) => {
  const { clock, socket } = tracked()
  socket.destroy()
  t.equal(clock.pending, 0)
})

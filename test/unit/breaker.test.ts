// The circuit breaker's time logic, on a clock the test moves (the wire
// tests in test/resilience/breaker.test.ts prove it on real sockets).
import t from 'tap'
import { CircuitBreaker } from '../../lib/resilience/breaker.js'
import { ManualClock } from '../helpers/clock.js'

const A = 'http://127.0.0.1:1'
const B = 'http://127.0.0.1:2'

function opened (threshold = 3, reset = 30000) {
  const clock = new ManualClock()
  const breaker = new CircuitBreaker(threshold, reset, clock)
  for (let i = 0; i < threshold; i++) breaker.failure(A)
  return { clock, breaker }
}

t.test('threshold consecutive failures open the circuit of that origin only', async (t) => {
  const clock = new ManualClock()
  const breaker = new CircuitBreaker(3, 30000, clock)
  breaker.failure(A)
  breaker.failure(A)
  t.same(breaker.admit(A), { ok: true, trial: false }, 'two failures: still closed')
  t.equal(breaker.open, 0)
  breaker.failure(A)
  t.equal(breaker.admit(A).ok, false, 'the third opens it')
  t.equal(breaker.open, 1)
  t.same(breaker.admit(B), { ok: true, trial: false }, 'another origin is not affected')
})

t.test('a success ends the failure run', async (t) => {
  const breaker = new CircuitBreaker(3, 30000, new ManualClock())
  breaker.failure(A)
  breaker.failure(A)
  breaker.success(A)
  breaker.failure(A)
  breaker.failure(A)
  t.equal(breaker.admit(A).ok, true, 'two failures after a success do not open it')
})

t.test('an open circuit rejects until reset, saying how long is left (at least 1 s)', async (t) => {
  const { clock, breaker } = opened(3, 30000)
  const first = breaker.admit(A)
  t.same(first, { ok: false, retryAfterMs: 30000 })
  clock.advance(29500)
  t.same(breaker.admit(A), { ok: false, retryAfterMs: 1000 }, '500 ms left: rounded up to a second')
  clock.advance(499)
  t.equal(breaker.admit(A).ok, false, '1 ms before reset: still open')
  clock.advance(1)
  t.same(breaker.admit(A), { ok: true, trial: true }, 'at reset: one trial goes through')
})

t.test('half-open: one trial at a time; its success closes, its failure reopens for a whole reset', async (t) => {
  const { clock, breaker } = opened(3, 1000)
  clock.advance(1000)
  t.same(breaker.admit(A), { ok: true, trial: true })
  t.equal(breaker.admit(A).ok, false, 'a second request during the trial is rejected')
  breaker.failure(A)
  t.same(breaker.admit(A), { ok: false, retryAfterMs: 1000 }, 'the failed trial reopened it from now')
  clock.advance(1000)
  t.same(breaker.admit(A), { ok: true, trial: true }, 'next trial after another reset')
  breaker.success(A)
  t.same(breaker.admit(A), { ok: true, trial: false }, 'closed by the successful trial')
  t.equal(breaker.open, 0)
})

t.test('an abandoned trial (its caller left) lets the next request be the trial', async (t) => {
  const { clock, breaker } = opened(3, 1000)
  clock.advance(1000)
  t.equal(breaker.admit(A).ok, true)
  breaker.abandon(A)
  t.same(breaker.admit(A), { ok: true, trial: true })
})

t.test('the wall clock does not matter: only the injected monotonic clock moves a circuit', async (t) => {
  const { breaker } = opened(3, 1000)
  const realNow = Date.now
  Date.now = () => realNow() + 3600_000
  t.teardown(() => { Date.now = realNow })
  t.equal(breaker.admit(A).ok, false, 'an hour of wall-clock jump does not close it')
})

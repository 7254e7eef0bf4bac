// Backoff with jitter and Retry-After (SPEC "Extensions": x:retry.base-delay,
// x:retry.max-delay), with the randomness and the clock given by the test.
import t from 'tap'
import { backoff, parseRetryAfter } from '../../lib/resilience/policy.js'
import { settingsOf } from '../helpers/wire.js'

const s = settingsOf('xmlns:x="urn:fastify-http-pools:1" x:retry.base-delay="100" x:retry.max-delay="1000"')

t.test('wait before retry k is random(0.8, 1.0) * base * 2^(k-1)', async (t) => {
  t.equal(backoff(s, 1, () => 0), 80, 'k=1, lowest jitter')
  t.equal(backoff(s, 1, () => 1), 100, 'k=1, highest jitter')
  t.equal(backoff(s, 2, () => 0.5), 180, 'k=2, middle')
  t.equal(backoff(s, 3, () => 1), 400, 'k=3')
})

t.test('one wait is capped at x:retry.max-delay', async (t) => {
  t.equal(backoff(s, 5, () => 1), 1000, '1600 capped to 1000')
  t.equal(backoff(s, 30, () => 0), 1000)
})

t.test('Retry-After: delay-seconds or an HTTP-date against the given time', async (t) => {
  const now = Date.parse('Mon, 30 Nov 2026 12:00:00 GMT')
  t.equal(parseRetryAfter('2', now), 2000)
  t.equal(parseRetryAfter(' 0 ', now), 0)
  t.equal(parseRetryAfter('Mon, 30 Nov 2026 12:00:03 GMT', now), 3000)
  t.equal(parseRetryAfter('Mon, 30 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past: at once')
  t.equal(parseRetryAfter(['5', '9'], now), 5000, 'the first of repeated fields')
  t.equal(parseRetryAfter(undefined, now), undefined)
  t.equal(parseRetryAfter('', now), undefined)
  t.equal(parseRetryAfter('soon', now), undefined, 'unreadable: the backoff applies')
  t.equal(parseRetryAfter('-1', now), undefined, 'negative is not delay-seconds')
})

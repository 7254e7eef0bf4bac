// The pool's own queue (SPEC "Every exchange ends": a request given up while
// it waits leaves the queue at once and is never sent; x:queue.timeout) and
// its order across origins, with a stand-in for the sockets below and a clock
// the test moves. test/resilience/deadlines.test.ts proves it on the wire.
import { PassThrough } from 'node:stream'
import t from 'tap'
import type { Dispatcher } from 'undici'
import type { Controller, Handler } from '../../lib/handler/decorator.js'
import { Exchanges, type Capacity } from '../../lib/pool/exchange.js'
import { ManualClock } from '../helpers/clock.js'

interface Sent { opts: Dispatcher.DispatchOptions, handler: Handler, controller: Controller & { aborted: boolean, reason: Error | null } }

function pool (capacity: Partial<Capacity> = {}) {
  const clock = new ManualClock()
  const exchanges = new Exchanges({ perOrigin: 1, total: 2, queueTimeout: 0, maxPending: 0, socketTimeout: 0, ...capacity }, clock)
  const sent: Sent[] = []
  const dispatch = exchanges.interceptor((opts, handler) => {
    const controller = {
      aborted: false,
      paused: false,
      reason: null as Error | null,
      abort (reason: Error) {
        if (this.aborted) return
        this.aborted = true
        this.reason = reason
        handler.onResponseError?.(this, reason)
      },
      pause () { this.paused = true },
      resume () { this.paused = false }
    }
    sent.push({ opts, handler, controller })
    handler.onRequestStart?.(controller, {})
    return true
  })
  const errors: Array<{ path: string, err: Error }> = []
  const callers: Record<string, Controller> = {}
  const send = (origin: string, path: string, body?: unknown): void => {
    dispatch({ origin, path, method: 'GET', body } as Dispatcher.DispatchOptions, {
      onRequestStart: (c) => { callers[path] = c },
      onResponseError: (_c, err) => { errors.push({ path, err }) }
    })
  }
  const finish = async (i: number): Promise<void> => {
    const s = sent[i]!
    s.handler.onResponseStart?.(s.controller, 200, {}, 'OK')
    s.handler.onResponseEnd?.(s.controller, {})
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { clock, exchanges, sent, send, errors, callers, finish }
}

const A = 'http://a:1'
const B = 'http://b:1'

t.test('a request waits when its origin has no room, and is sent when room frees', async (t) => {
  const p = pool()
  p.send(A, '/1')
  p.send(A, '/2')
  t.same(p.sent.map((s) => s.opts.path), ['/1'], 'max-per-route 1: the second waits')
  t.equal(p.exchanges.waiting, 1)
  await p.finish(0)
  t.same(p.sent.map((s) => s.opts.path), ['/1', '/2'])
  t.equal(p.exchanges.waiting, 0)
  t.same(p.exchanges.counters, { requests: 2, errors: 0, queueTimeouts: 0, queueFull: 0 })
})

t.test('the oldest waiting request goes first, and one whose origin is full does not hold up another origin', async (t) => {
  const p = pool({ perOrigin: 1, total: 2 })
  p.send(A, '/a1')
  p.send(A, '/a2')
  p.send(B, '/b1')
  t.same(p.sent.map((s) => s.opts.path), ['/a1'], 'B waits behind A\'s waiting request (FIFO on arrival)')
  await p.finish(0)
  t.same(p.sent.map((s) => s.opts.path), ['/a1', '/a2', '/b1'], 'when room frees, A\'s oldest and then B\'s go')
})

t.test('a request given up while it waits leaves the queue at once and is never sent', async (t) => {
  const p = pool()
  p.send(A, '/1')
  p.send(A, '/2')
  p.callers['/2']!.abort(new Error('client gone'))
  t.equal(p.exchanges.waiting, 0, 'out of the queue at once')
  t.same(p.errors.map((e) => [e.path, e.err.message]), [['/2', 'client gone']])
  await p.finish(0)
  t.same(p.sent.map((s) => s.opts.path), ['/1'], 'never sent')
  t.same(p.exchanges.counters, { requests: 1, errors: 0, queueTimeouts: 0, queueFull: 0 }, 'not an upstream exchange')
})

t.test('x:queue.timeout: 503 FST_HTTP_POOLS_QUEUE_TIMEOUT at the limit; nothing left behind', async (t) => {
  const p = pool({ queueTimeout: 50 })
  p.send(A, '/1')
  p.send(A, '/2')
  p.clock.advance(49)
  t.equal(p.errors.length, 0)
  p.clock.advance(1)
  t.same(p.errors.map((e) => [e.path, (e.err as { code?: string }).code]), [['/2', 'FST_HTTP_POOLS_QUEUE_TIMEOUT']])
  t.equal(p.exchanges.waiting, 0)
  t.equal(p.clock.pending, 0)
  t.equal(p.exchanges.counters.queueTimeouts, 1)
  await p.finish(0)
  t.equal(p.sent.length, 1, 'the timed-out request is never sent')
})

t.test('a request sent in time has its queue timer cleared', async (t) => {
  const p = pool({ queueTimeout: 50 })
  p.send(A, '/1')
  p.send(A, '/2')
  await p.finish(0)
  t.equal(p.clock.pending, 0)
  p.clock.advance(100)
  t.equal(p.errors.length, 0)
})

t.test('the caller\'s aborts reach undici once sent; pause and resume too', async (t) => {
  const p = pool()
  p.send(A, '/1')
  p.callers['/1']!.pause()
  t.equal(p.sent[0]!.controller.paused, true)
  p.callers['/1']!.resume()
  t.equal(p.sent[0]!.controller.paused, false)
  p.callers['/1']!.abort(new Error('gone'))
  t.equal(p.sent[0]!.controller.aborted, true)
  t.same(p.exchanges.counters, { requests: 1, errors: 0, queueTimeouts: 0, queueFull: 0 }, 'an abort by the caller is not an upstream error')
})

t.test('an upload that fails while waiting ends the request as a client abort, unsent', async (t) => {
  const p = pool()
  p.send(A, '/1')
  const upload = new PassThrough()
  p.send(A, '/upload', upload)
  upload.destroy(new Error('aborted'))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(p.errors.map((e) => [e.path, (e.err as { code?: string }).code]), [['/upload', 'FST_HTTP_POOLS_CLIENT_ABORT']])
  t.equal(p.exchanges.waiting, 0)
  t.equal(upload.listenerCount('error'), 0, 'its listener is gone')
})

t.test('an upload that fails once sent: the error is the client\'s, not counted as an upstream error', async (t) => {
  const p = pool()
  const upload = new PassThrough()
  p.send(A, '/upload', upload)
  const failure = new Error('aborted')
  upload.destroy(failure)
  await new Promise((resolve) => setImmediate(resolve))
  p.sent[0]!.handler.onResponseError?.(p.sent[0]!.controller, failure)
  t.equal((p.errors[0]!.err as { code?: string }).code, 'FST_HTTP_POOLS_CLIENT_ABORT')
  t.same(p.exchanges.counters, { requests: 1, errors: 0, queueTimeouts: 0, queueFull: 0 })
})

t.test('closing waits until nothing waits; destroying fails what waits', async (t) => {
  const p = pool()
  p.send(A, '/1')
  p.send(A, '/2')
  let drained = false
  const closing = p.exchanges.untilDrained().then(() => { drained = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(drained, false)
  await p.finish(0)
  await closing
  t.equal(drained, true)
  p.send(A, '/3')
  p.exchanges.failWaiting(new Error('destroyed'))
  t.same(p.errors.map((e) => e.path), ['/3'])
})

t.test('x:queue.max-pending: one more waiting request is refused at once with 503 FST_HTTP_POOLS_QUEUE_FULL, never queued', async (t) => {
  const p = pool({ maxPending: 2 })
  p.send(A, '/running')
  p.send(A, '/w1')
  p.send(A, '/w2')
  p.send(A, '/over')
  t.same(p.errors.map((e) => [e.path, (e.err as { code?: string }).code]), [['/over', 'FST_HTTP_POOLS_QUEUE_FULL']])
  t.equal(p.exchanges.waiting, 2)
  t.equal(p.exchanges.counters.queueFull, 1)
  p.callers['/w1']!.abort(new Error('client gone'))
  p.send(A, '/w3')
  t.equal(p.exchanges.waiting, 2, 'a request that left freed its place at once')
  t.equal(p.exchanges.counters.queueFull, 1)
  await p.finish(0)
  t.same(p.sent.map((s) => s.opts.path), ['/running', '/w2'], 'the refused one was never sent')
})

t.test('fair across origins at max-total: room goes to the origins in turn, so B does not wait for A\'s backlog', async (t) => {
  const p = pool({ perOrigin: 10, total: 1 })
  p.send(A, '/a1')
  for (const path of ['/a2', '/a3', '/a4']) p.send(A, path)
  p.send(B, '/b1')
  for (let i = 0; i < 4; i++) await p.finish(i)
  t.same(p.sent.map((s) => s.opts.path), ['/a1', '/a2', '/b1', '/a3', '/a4'], 'B\'s request went after one of A\'s, not after all of them')
})

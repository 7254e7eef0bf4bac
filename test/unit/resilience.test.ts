// The resilience layer's time logic (SPEC "Extensions": retries, backoff,
// Retry-After, x:request.timeout, the breaker; "Every
// exchange ends": cancellable at any point, reload-safe close) on a clock the
// test moves. The layer below is a stand-in for the pool's connection layer
// whose attempts the test answers by hand; test/resilience proves the same
// through real sockets.
import t from 'tap'
import { Dispatcher } from 'undici'
import type { Controller, Handler } from '../../lib/handler/decorator.js'
import type { PoolDispatcher } from '../../lib/pool/dispatcher.js'
import { ResilientDispatcher } from '../../lib/resilience/dispatcher.js'
import { ManualClock } from '../helpers/clock.js'
import { settingsOf } from '../helpers/wire.js'

const X = 'xmlns:x="urn:fastify-http-pools:1"'

/** An attempt's controller as undici's clients behave: abort ends the attempt with an error. */
class AttemptController implements Controller {
  aborted = false
  paused = false
  reason: Error | null = null
  constructor (private readonly handler: Handler) {}
  abort (reason: Error): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.handler.onResponseError?.(this, reason)
  }

  pause (): void { this.paused = true }
  resume (): void { this.paused = false }
}

/** One attempt that reached the pool: the test starts it and answers it. */
class Sent {
  readonly controller: AttemptController
  constructor (readonly handler: Handler) { this.controller = new AttemptController(handler) }
  start (): this { this.handler.onRequestStart?.(this.controller, {}); return this }
  respond (status: number, headers: Record<string, string> = {}, body = ''): void {
    this.start()
    this.handler.onResponseStart?.(this.controller, status, headers, '')
    if (body !== '') this.handler.onResponseData?.(this.controller, Buffer.from(body))
    this.handler.onResponseEnd?.(this.controller, {})
  }

  fail (code: string): void {
    this.start()
    this.handler.onResponseError?.(this.controller, Object.assign(new Error(code), { code }))
  }
}

class StandInPool extends Dispatcher {
  readonly sent: Sent[] = []
  closed = false
  destroyed = false
  override dispatch (_opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
    this.sent.push(new Sent(handler))
    return true
  }

  idleClosed = false
  closeIdle (): void { this.idleClosed = true }
  override async close (): Promise<void> { this.closed = true }
  override async destroy (): Promise<void> { this.destroyed = true }
}

/** What the caller of the layer saw. */
class Caller implements Handler {
  controller: Controller | undefined
  statuses: number[] = []
  body = ''
  ended = 0
  errors: Error[] = []
  onRequestStart (controller: Controller): void { this.controller = controller }
  onResponseStart (_c: Controller, status: number): void { this.statuses.push(status) }
  onResponseData (_c: Controller, chunk: Buffer): void { this.body += chunk.toString() }
  onResponseEnd (): void { this.ended++ }
  onResponseError (_c: Controller, err: Error): void { this.errors.push(err) }
  get code (): unknown { return (this.errors[0] as { code?: unknown } | undefined)?.code }
}

function layer (attributes: string) {
  const clock = new ManualClock()
  const pool = new StandInPool()
  const dispatcher = new ResilientDispatcher(pool as unknown as PoolDispatcher, settingsOf(`${X} ${attributes}`), clock)
  const send = (method = 'GET'): Caller => {
    const caller = new Caller()
    dispatcher.dispatch({ origin: 'http://127.0.0.1:9', path: '/', method }, caller)
    return caller
  }
  return { clock, pool, dispatcher, send }
}

t.test('a retryable status waits random(0.8, 1.0) * base-delay, then tries again', async (t) => {
  const { clock, pool, send } = layer('x:retry.base-delay="100"')
  const caller = send()
  pool.sent[0]!.respond(503, {}, 'discarded')
  clock.advance(79)
  t.equal(pool.sent.length, 1, 'no retry before 0.8 * base-delay')
  clock.advance(21)
  t.equal(pool.sent.length, 2, 'retried by base-delay')
  pool.sent[1]!.respond(200, {}, 'ok')
  t.same(caller.statuses, [200], 'the caller saw only the final response')
  t.equal(caller.body, 'ok', 'not the discarded body')
  t.equal(caller.ended, 1)
  t.equal(clock.pending, 0, 'no timer left')
})

t.test('Retry-After replaces the backoff exactly; one longer than max-delay goes back as it is', async (t) => {
  const { clock, pool, send } = layer('x:retry.max-delay="5000"')
  const caller = send()
  pool.sent[0]!.respond(503, { 'retry-after': '2' })
  clock.advance(1999)
  t.equal(pool.sent.length, 1)
  clock.advance(1)
  t.equal(pool.sent.length, 2, 'after exactly 2 s')
  pool.sent[1]!.respond(429, { 'retry-after': '6' })
  t.same(caller.statuses, [429], 'Retry-After 6 s > max-delay: the 429 is the answer')
  t.equal(pool.sent.length, 2)
})

t.test('informational responses pass on and do not stop a retry of the final status', async (t) => {
  const { clock, pool, send } = layer('x:retry.base-delay="10"')
  const caller = send()
  const first = pool.sent[0]!.start()
  first.handler.onResponseStart?.(first.controller, 103, {}, 'Early Hints')
  first.handler.onResponseStart?.(first.controller, 503, {}, '')
  first.handler.onResponseEnd?.(first.controller, {})
  clock.advance(10)
  t.equal(pool.sent.length, 2, 'the 503 after a 103 was retried')
  pool.sent[1]!.respond(200)
  t.same(caller.statuses, [103, 200])
})

t.test('x:request.timeout ends the exchange at its limit, retries included, and cancels the attempt', async (t) => {
  const { clock, pool, send } = layer('x:request.timeout="600" x:retry.base-delay="100"')
  const caller = send()
  pool.sent[0]!.fail('ECONNREFUSED')
  clock.advance(100)
  t.equal(pool.sent.length, 2, 'a retry within the deadline')
  const second = pool.sent[1]!.start()
  clock.advance(499)
  t.equal(caller.errors.length, 0, 'before the limit: still waiting')
  clock.advance(1)
  t.equal(caller.code, 'FST_HTTP_POOLS_REQUEST_TIMEOUT')
  t.equal(second.controller.aborted, true, 'the attempt in progress was aborted')
  t.equal(caller.errors.length, 1, 'one error for the caller')
  t.equal(clock.pending, 0)
})

t.test('a retry that cannot start before x:request.timeout is not made', async (t) => {
  const { clock, pool, send } = layer('x:request.timeout="150" x:retry.base-delay="100"')
  const caller = send()
  clock.advance(100)
  pool.sent[0]!.respond(503)
  t.same(caller.statuses, [503], 'delivered: 100 ms spent + at least 80 ms of backoff is past 150')
  t.equal(pool.sent.length, 1)
})

t.test('the caller can cancel between attempts: the retry is never made, no timer is left', async (t) => {
  const { clock, pool, send } = layer('x:retry.base-delay="100"')
  const caller = send()
  pool.sent[0]!.respond(503)
  caller.controller!.abort(new Error('client gone'))
  t.same(caller.errors.map((e) => e.message), ['client gone'])
  t.equal(clock.pending, 0)
  clock.advance(1000)
  t.equal(pool.sent.length, 1, 'no retry')
})

t.test('the caller can cancel a queued attempt and one in progress', async (t) => {
  const { pool, send } = layer('x:retry.base-delay="100"')
  const queued = send()
  queued.controller!.abort(new Error('gone while queued'))
  pool.sent[0]!.start()
  t.equal(pool.sent[0]!.controller.aborted, true, 'it leaves as soon as undici starts it')
  const running = send()
  pool.sent[1]!.start()
  running.controller!.abort(new Error('gone while waiting for headers'))
  t.equal(pool.sent[1]!.controller.aborted, true)
  t.equal(running.errors.length, 1)
})

t.test('pause and resume reach the attempt in progress', async (t) => {
  const { pool, send } = layer('x:retry.base-delay="100"')
  const caller = send()
  const sent = pool.sent[0]!.start()
  caller.controller!.pause()
  t.equal(sent.controller.paused, true)
  caller.controller!.resume()
  t.equal(sent.controller.paused, false)
})

t.test('the breaker: threshold failures open the circuit; the next request is rejected unsent; after reset one trial', async (t) => {
  const { clock, pool, dispatcher, send } = layer('x:retry.max-attempts="1" x:circuit-breaker.threshold="2" x:circuit-breaker.reset="1000"')
  send()
  pool.sent[0]!.respond(502)
  send()
  pool.sent[1]!.fail('ECONNRESET')
  const rejected = send()
  t.equal(rejected.code, 'FST_HTTP_POOLS_CIRCUIT_OPEN')
  t.equal(pool.sent.length, 2, 'not sent')
  t.equal(dispatcher.counters.circuitRejections, 1)
  clock.advance(1000)
  send()
  t.equal(pool.sent.length, 3, 'the trial went through')
  t.equal(send().code, 'FST_HTTP_POOLS_CIRCUIT_OPEN', 'one trial at a time')
  pool.sent[2]!.respond(200)
  send()
  t.equal(pool.sent.length, 4, 'closed again')
})

t.test('the pool\'s own limits and the client\'s going away are never retried and never count for the breaker', async (t) => {
  const { clock, pool, dispatcher, send } = layer('x:circuit-breaker.threshold="1" x:retry.base-delay="10"')
  send().controller!.abort(new Error('client gone'))
  const queueTimedOut = send()
  pool.sent[1]!.fail('FST_HTTP_POOLS_QUEUE_TIMEOUT')
  const uploadFailed = send()
  pool.sent[2]!.fail('FST_HTTP_POOLS_CLIENT_ABORT')
  clock.advance(1000)
  t.equal(queueTimedOut.code, 'FST_HTTP_POOLS_QUEUE_TIMEOUT')
  t.equal(uploadFailed.code, 'FST_HTTP_POOLS_CLIENT_ABORT')
  t.equal(pool.sent.length, 3, 'none retried')
  t.equal(dispatcher.breaker!.open, 0, 'the circuit is still closed')
  send()
  t.equal(pool.sent.length, 4, 'and lets the next request through')
})

t.test('close waits for an exchange between attempts, which finishes on this dispatcher; new requests are refused', async (t) => {
  const { clock, pool, dispatcher, send } = layer('x:retry.base-delay="100"')
  const caller = send()
  pool.sent[0]!.respond(503)
  let closed = false
  const closing = dispatcher.close().then(() => { closed = true })
  const late = send()
  t.equal(late.errors[0]?.name, 'ClientDestroyedError', 'a new request after close is refused')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(closed, false, 'close waits')
  t.equal(pool.closed, false, 'the pool stays open')
  t.equal(pool.idleClosed, true, 'but its idle connections are let go at once')
  clock.advance(100)
  t.equal(pool.sent.length, 2, 'the retry was sent')
  pool.sent[1]!.respond(200)
  await closing
  t.same(caller.statuses, [200])
  t.equal(pool.closed, true, 'then the pool closed')
})

t.test('destroy ends every exchange at once, also one between attempts', async (t) => {
  const { clock, pool, dispatcher, send } = layer('x:retry.base-delay="100"')
  const caller = send()
  pool.sent[0]!.respond(503)
  await dispatcher.destroy(new Error('forced'))
  t.same(caller.errors.map((e) => e.message), ['forced'])
  t.equal(pool.destroyed, true)
  t.equal(clock.pending, 0)
})

t.test('x:retry.min-concurrent: with no budget, that many exchanges still retry at once; the next failure goes back as it is', async (t) => {
  const { clock, pool, dispatcher, send } = layer('x:retry.budget="0" x:retry.min-concurrent="1" x:retry.base-delay="10"')
  const first = send()
  const second = send()
  pool.sent[0]!.respond(503)
  pool.sent[1]!.respond(503)
  t.same(second.statuses, [503], 'the second retry was over budget: its 503 went back')
  t.equal(dispatcher.counters.retryBudgetExhausted, 1)
  clock.advance(10)
  t.equal(pool.sent.length, 3, 'the first one retried')
  pool.sent[2]!.respond(503)
  clock.advance(20)
  t.equal(pool.sent.length, 4, 'with no other exchange retrying, its next retry is within min-concurrent')
  pool.sent[3]!.respond(200)
  t.same(first.statuses, [200])
  const third = send()
  pool.sent[4]!.fail('ECONNREFUSED')
  clock.advance(10)
  t.equal(pool.sent.length, 6, 'its place was given back when it ended: a lone request retries again')
  pool.sent[5]!.respond(200)
  t.same(third.statuses, [200])
})

t.test('x:retry.budget: retries in progress are at most that share of the exchanges in progress', async (t) => {
  const { pool, dispatcher, send } = layer('x:retry.budget="50" x:retry.min-concurrent="0" x:retry.base-delay="10"')
  const callers = Array.from({ length: 4 }, () => send())
  for (const s of pool.sent.slice(0, 4)) s.fail('ECONNRESET')
  t.equal(dispatcher.counters.retries, 2, '50% of 4 active exchanges: 2 retry')
  t.equal(dispatcher.counters.retryBudgetExhausted, 2)
  t.equal(callers.filter((c) => c.code === 'ECONNRESET').length, 2, 'the others get their failure as it is')
})

t.test('the breaker counts TLS failures and HTTP/2 stream resets; a malformed response neither counts nor resets the run', async (t) => {
  const { pool, dispatcher, send } = layer('x:retry.max-attempts="1" x:circuit-breaker.threshold="3"')
  send()
  pool.sent[0]!.fail('ERR_TLS_CERT_ALTNAME_INVALID')
  send()
  pool.sent[1]!.fail('FST_HTTP_POOLS_RESPONSE_LIMIT')
  send()
  // The pool's connection layer reports an HTTP/2 stream reset by this code (lib/pool/connection-faults.ts).
  pool.sent[2]!.fail('FST_HTTP_POOLS_STREAM_RESET')
  t.equal(dispatcher.breaker!.open, 0, 'two failures of the origin so far: the malformed response did not end the run')
  send()
  pool.sent[3]!.fail('UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  t.equal(dispatcher.breaker!.open, 1, 'the third opens the circuit')
})

t.test('which failures are retried for which methods: unprocessed HTTP/2 streams for any, stream resets for x:retry.methods, streams a GOAWAY covered and TLS never', async (t) => {
  const { clock, pool, send } = layer('x:retry.base-delay="10"')
  const cases: Array<[string, string, number]> = [
    ['FST_HTTP_POOLS_STREAM_REFUSED', 'POST', 2],
    ['FST_HTTP_POOLS_STREAM_REFUSED', 'GET', 2],
    ['FST_HTTP_POOLS_STREAM_RESET', 'GET', 2],
    ['FST_HTTP_POOLS_STREAM_RESET', 'POST', 1],
    ['FST_HTTP_POOLS_STREAM_CUT', 'PUT', 1],
    ['FST_HTTP_POOLS_STREAM_CUT', 'GET', 1],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'GET', 1]
  ]
  for (const [code, method, attempts] of cases) {
    const before = pool.sent.length
    const caller = send(method)
    pool.sent[before]!.fail(code)
    clock.advance(100)
    if (pool.sent.length > before + 1) pool.sent[before + 1]!.respond(200)
    t.equal(pool.sent.length - before, attempts, `${code}, ${method}: ${attempts} attempt(s)`)
    t.same(attempts === 2 ? caller.statuses : caller.code, attempts === 2 ? [200] : code, 'the caller gets the retry\'s answer, or the failure as it is')
  }
})

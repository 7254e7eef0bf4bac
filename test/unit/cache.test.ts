// The response cache's TTL, coalescing and memory bounds (SPEC "Cache keys"),
// on a clock the test moves; test/cache proves the same through real sockets.
import t from 'tap'
import { CacheMemory, ResponseCache, type CachedResponse, type Fetched } from '../../lib/cache/cache.js'
import { ManualClock } from '../helpers/clock.js'

const TTL = 500
const LIMITS = { maxEntries: 3, maxBodyBytes: 100, maxBytes: 250 }

function response (body: string, statusCode = 200): CachedResponse {
  const buf = Buffer.from(body)
  return { statusCode, headers: {}, body: [buf], size: buf.length }
}

/** A fetch the test settles by hand, counting how often the cache started one. */
function upstream () {
  const calls: Array<{ resolve: (r: Fetched<string>) => void, reject: (e: Error) => void }> = []
  const fetch = async (): Promise<Fetched<string>> => await new Promise((resolve, reject) => { calls.push({ resolve, reject }) })
  return { calls, fetch }
}

const text = (r: CachedResponse): string => r.body[0]!.toString()

t.test('a response is kept cache.ttl ms from its arrival, not from the request', async (t) => {
  const clock = new ManualClock()
  const cache = new ResponseCache(TTL, new CacheMemory(LIMITS), clock)
  const up = upstream()
  const first = cache.run('k', up.fetch, text)
  clock.advance(TTL * 3) // the upstream takes longer than the TTL
  up.calls[0]!.resolve({ shared: response('one') })
  t.equal(await first, 'one')
  clock.advance(TTL - 1)
  t.equal(await cache.run('k', up.fetch, text), 'one', '1 ms before the TTL: the stored response')
  t.equal(up.calls.length, 1)
  clock.advance(1)
  t.equal(cache.size, 0, 'at the TTL its timer removed the entry, though nobody asked')
  t.equal(cache.totalBytes, 0)
  const second = cache.run('k', up.fetch, text)
  t.equal(up.calls.length, 2, 'after the TTL: upstream again')
  up.calls[1]!.resolve({ shared: response('two') })
  t.equal(await second, 'two')
  t.same(cache.counters, { hits: 1, coalesced: 0, misses: 2 })
})

t.test('peek sees a fresh entry only, and never starts an exchange', async (t) => {
  const clock = new ManualClock()
  const cache = new ResponseCache(TTL, new CacheMemory(LIMITS), clock)
  t.equal(cache.peek('k'), undefined)
  const up = upstream()
  const run = cache.run('k', up.fetch, text)
  t.equal(cache.peek('k'), undefined, 'in flight is not fresh')
  up.calls[0]!.resolve({ shared: response('one') })
  await run
  t.equal(cache.peek('k') && text(cache.peek('k')!), 'one')
  clock.fireEarly(0) // nothing due yet
  t.equal(cache.size, 1)
  clock.advance(TTL)
  t.equal(cache.peek('k'), undefined, 'expired')
})

t.test('concurrent callers share one exchange; a failure rejects them all and caches nothing', async (t) => {
  const clock = new ManualClock()
  const cache = new ResponseCache(TTL, new CacheMemory(LIMITS), clock)
  const up = upstream()
  const waiters = [cache.run('k', up.fetch, text), cache.run('k', up.fetch, text), cache.run('k', up.fetch, text)]
  t.equal(up.calls.length, 1, 'one upstream exchange for three callers')
  up.calls[0]!.reject(new Error('refused'))
  for (const w of waiters) await t.rejects(w, /refused/)
  t.equal(cache.size, 0, 'nothing cached')
  t.equal(clock.pending, 0, 'no timer left behind')
  t.same(cache.counters, { hits: 0, coalesced: 2, misses: 1 })
})

t.test('a response only the leader may have: waiters make their own requests', async (t) => {
  const cache = new ResponseCache(TTL, new CacheMemory(LIMITS), new ManualClock())
  const up = upstream()
  const leader = cache.run('k', up.fetch, text)
  const waiter = cache.run('k', up.fetch, text)
  up.calls[0]!.resolve({ own: 'private' })
  t.equal(await leader, 'private')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(up.calls.length, 2, 'the waiter asked upstream itself')
  up.calls[1]!.resolve({ own: 'its own' })
  t.equal(await waiter, 'its own')
  t.equal(cache.size, 0)
})

t.test('refresh replaces a stored entry and restarts its TTL', async (t) => {
  const clock = new ManualClock()
  const cache = new ResponseCache(TTL, new CacheMemory(LIMITS), clock)
  const up = upstream()
  const a = cache.run('k', up.fetch, text)
  up.calls[0]!.resolve({ shared: response('old') })
  await a
  clock.advance(TTL - 100)
  const b = cache.run('k', up.fetch, text, { refresh: true })
  up.calls[1]!.resolve({ shared: response('new') })
  t.equal(await b, 'new')
  clock.advance(200)
  t.equal(await cache.run('k', up.fetch, text), 'new', 'still cached past the old entry\'s TTL')
  t.equal(cache.totalBytes, 3, 'the old body\'s bytes were given back')
  t.equal(clock.pending, 1, 'one expiry timer, the old one cancelled')
})

t.test('memory bounds: too large is not cached; the oldest go past maxEntries or maxBytes', async (t) => {
  const clock = new ManualClock()
  const cache = new ResponseCache(10_000, new CacheMemory(LIMITS), clock)
  const store = async (key: string, body: string): Promise<void> => {
    const up = upstream()
    const run = cache.run(key, up.fetch, text)
    up.calls[0]!.resolve({ shared: response(body) })
    await run
  }
  await store('big', 'x'.repeat(101))
  t.equal(cache.size, 0, 'over maxBodyBytes: not cached')
  await store('a', 'a'.repeat(100))
  await store('b', 'b'.repeat(100))
  t.equal(cache.totalBytes, 200)
  await store('c', 'c'.repeat(100))
  t.equal(cache.totalBytes, 200, 'maxBytes 250: the oldest went')
  t.equal(cache.peek('a'), undefined)
  await store('d', 'd')
  await store('e', 'e')
  t.equal(cache.size, 3, 'maxEntries 3')
  t.equal(cache.peek('b'), undefined)
  cache.clear()
  t.equal(cache.size, 0)
  t.equal(cache.totalBytes, 0)
  t.equal(clock.pending, 0, 'clear cancels every expiry timer')
})

t.test('two caches of one memory share its bound: the oldest response of either goes first', async (t) => {
  const clock = new ManualClock()
  const memory = new CacheMemory(LIMITS)
  const client = new ResponseCache(10_000, memory, clock)
  const forward = new ResponseCache(10_000, memory, clock)
  const store = async (cache: ResponseCache, key: string, body: string): Promise<void> => {
    const up = upstream()
    const run = cache.run(key, up.fetch, text)
    up.calls[0]!.resolve({ shared: response(body) })
    await run
  }
  await store(client, 'a', 'a')
  await store(forward, 'b', 'b')
  await store(client, 'c', 'c')
  await store(forward, 'd', 'd')
  t.equal(client.size + forward.size, 3, 'maxEntries 3 across both')
  t.equal(client.peek('a'), undefined, 'the oldest went, from the cache that did not store last')
  t.equal(text(forward.peek('b')!), 'b', 'the next oldest stays')
  await store(forward, 'e', 'e'.repeat(100))
  await store(client, 'f', 'f'.repeat(100))
  t.equal(memory.bytes, client.totalBytes + forward.totalBytes, 'the memory counts both')
  t.ok(memory.bytes <= 250, `maxBytes 250 across both (${memory.bytes})`)
  forward.clear()
  t.equal(memory.entries, client.size, 'clearing one gives its share back')
  t.equal(memory.bytes, client.totalBytes)
})

t.test('a caller\'s signal abandons the wait, not the shared exchange', async (t) => {
  const cache = new ResponseCache(TTL, new CacheMemory(LIMITS), new ManualClock())
  const up = upstream()
  const ac = new AbortController()
  const leaving = cache.run('k', up.fetch, text, { signal: ac.signal })
  const staying = cache.run('k', up.fetch, text)
  ac.abort(new Error('client left'))
  await t.rejects(leaving, /client left/)
  up.calls[0]!.resolve({ shared: response('one') })
  t.equal(await staying, 'one')
  t.equal(cache.size, 1, 'the response was still cached for the others')
})

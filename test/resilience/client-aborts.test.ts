// SPEC "Every exchange ends", client goes away (issue 13, items 1 and 2):
// clients that leave mid-upload or while their request waits, through a real
// gateway to a loopback upstream. A client's leaving cancels its upstream
// exchange (a waiting request is never sent), is never an upstream failure
// (no breaker count, no error, no retry), is counted as clientAborts and
// logged at debug level as 499, never warn.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { faultServer } from '../helpers/fault-server.js'
import { BOUND_MS, config, eventually, gateway, pool, WARN, type Gateway } from '../helpers/resilience.js'

/** A raw client that sends `head` and `body` to the gateway and keeps its socket open. */
async function rawClient (gw: Gateway, head: string, body = ''): Promise<Socket> {
  const url = new URL(gw.url)
  const socket = connect(Number(url.port), url.hostname)
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(head + body)
  return socket
}

async function waitFor (what: string, check: () => boolean): Promise<void> {
  if (!await eventually(check, BOUND_MS)) throw new Error(`timed out waiting for ${what}`)
}

t.test('clients that abort their uploads never open the origin\'s circuit, and are not upstream errors', async (t) => {
  const gw = await gateway(t, config(pool('cb', { default: 'true', 'x:circuit-breaker.threshold': 3 })), 'debug')
  const up = await faultServer(t)
  up.serve('hang')
  const target = `${up.origin}/upload`
  for (let i = 1; i <= 3; i++) {
    const client = await rawClient(gw, `PUT /cb?to=${encodeURIComponent(target)} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n`, 'u'.repeat(1024))
    await waitFor(`upload ${i} to be on its way upstream`, () => gw.stats('cb').running === 1)
    client.destroy()
    await gw.settled('cb')
  }
  const s = gw.stats('cb')
  t.equal(s.clientAborts, 3, 'stats: clientAborts')
  t.equal(s.errors, 0, 'no upstream error counted')
  t.equal(s.openCircuits, 0, 'the circuit stays closed')
  t.equal(s.retries, 0, 'nothing retried')

  up.serve('ok')
  const next = await gw.forward('cb', `${up.origin}/next`)
  t.equal(next.statusCode, 200, 'the next client is served, not rejected with CIRCUIT_OPEN')
  t.same(gw.logs.filter((l) => l.level >= WARN).map((l) => l.msg), [], 'nothing logged at warn')
  const debug = gw.logs.filter((l) => l.statusCode === 499)
  t.equal(debug.length, 3, 'each abort logged once, with status 499')
  t.ok(debug.every((l) => l.level === 20 && l.pool === 'cb'), 'at debug level, naming the pool')
})

t.test('clients that leave while their requests wait: the waiting ones are never sent, the running ones are cancelled', async (t) => {
  const gw = await gateway(t, config(pool('s', { default: 'true', 'http.conn-manager.max-per-route': 10, 'http.conn-manager.max-total': 10 })))
  const up = await faultServer(t)
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  up.serve({ status: 200, body: 'late', until: held })
  const target = encodeURIComponent(`${up.origin}/slow`)
  const clients = await Promise.all(Array.from({ length: 50 }, async () => await rawClient(gw, `GET /s?to=${target} HTTP/1.1\r\nhost: gw\r\n\r\n`)))
  await up.arrived(10)
  await waitFor('40 requests waiting in the pool', () => gw.stats('s').pending === 40)
  for (const c of clients) c.destroy()
  const after = await gw.settled('s')
  t.equal(up.count, 10, 'only the 10 that had a connection reached the upstream: the 40 waiting were never sent')
  t.equal(after.clientAborts, 50, 'stats: 50 client aborts')
  t.equal(after.errors, 0, 'none is an upstream error')
  t.equal(after.running + after.pending + after.queued, 0, 'nothing left running or waiting')

  up.serve('ok')
  const next = await gw.forward('s', `${up.origin}/next`)
  t.equal(next.statusCode, 200, 'a new client is served at once: the origin is not busy with abandoned requests')
  t.equal(up.count, 11)
  release()
})

t.test('a client that leaves mid-response cancels the exchange: its connection is closed, nothing is retried', async (t) => {
  const gw = await gateway(t, config(pool('m', { default: 'true' })))
  const up = await faultServer(t)
  up.serve('stall-body')
  const client = await rawClient(gw, `GET /m?to=${encodeURIComponent(`${up.origin}/partial`)} HTTP/1.1\r\nhost: gw\r\n\r\n`)
  await once(client, 'data')
  client.destroy()
  const after = await gw.settled('m')
  t.equal(after.clientAborts, 1)
  t.equal(after.errors, 0)
  // (undici then opens a fresh connection for the aborted request's queue slot, which it never uses.)
  t.ok(await eventually(() => up.closedConnections === 1, BOUND_MS), 'the upstream connection, mid-response, was closed')
  t.equal(up.count, 1, 'not retried')
})

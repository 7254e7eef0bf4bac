// http.tcp.nodelay and http.socket.buffer-size, read off the client sockets
// that undici reports on 'undici:client:connected'.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { BOUND_MS, dispatcherOf, httpServer, settingsOf, type Teardown } from '../helpers/wire.js'

/** The client socket of the first connection the pool makes to a fresh server. */
async function clientSocket (t: Teardown, attributes: string): Promise<Socket> {
  const s = await httpServer(t, (_req, res) => { res.end('ok') })
  const sockets: Socket[] = []
  const onConnected = (message: unknown): void => {
    const { socket } = message as { socket: Socket }
    if (socket.remotePort === s.port) sockets.push(socket)
  }
  subscribe('undici:client:connected', onConnected)
  t.teardown(() => { unsubscribe('undici:client:connected', onConnected) })
  const pool = dispatcherOf(t, settingsOf(attributes))
  const res = await request(`${s.origin}/`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) })
  await res.body.text()
  if (sockets.length !== 1) throw new Error(`expected one connection, saw ${sockets.length}`)
  return sockets[0]!
}

/** Node's own record of the last setNoDelay() on a socket (it keeps no public getter). */
function noDelayOf (socket: Socket): unknown {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay')
  if (sym === undefined) throw new Error('this Node version has no kSetNoDelay on sockets')
  return (socket as unknown as Record<symbol, unknown>)[sym]
}

t.test('http.tcp.nodelay="true" sets TCP_NODELAY on the socket', async (t) => {
  t.equal(noDelayOf(await clientSocket(t, 'http.tcp.nodelay="true"')), true)
})

t.test('http.tcp.nodelay="false" turns Nagle back on (undici sets TCP_NODELAY by default)', async (t) => {
  t.equal(noDelayOf(await clientSocket(t, 'http.tcp.nodelay="false"')), false)
})

t.test('http.tcp.nodelay defaults to true', async (t) => {
  t.equal(noDelayOf(await clientSocket(t, '')), true)
})

t.test('http.socket.buffer-size is the socket\'s readable highWaterMark', async (t) => {
  t.equal((await clientSocket(t, 'http.socket.buffer-size="4096"')).readableHighWaterMark, 4096)
})

t.test('http.socket.buffer-size defaults to 8192', async (t) => {
  t.equal((await clientSocket(t, '')).readableHighWaterMark, 8192)
})

t.test('http.socket.buffer-size="0" keeps undici\'s default (64 KiB for plain TCP)', async (t) => {
  t.equal((await clientSocket(t, 'http.socket.buffer-size="0"')).readableHighWaterMark, 64 * 1024)
})

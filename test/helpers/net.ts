// Loopback ports for the tests: listening on 127.0.0.1 port 0 with a close at
// teardown, a port that nothing listens on, and whether a port (or unix
// socket) accepts connections yet.
import { once } from 'node:events'
import type { Server } from 'node:http'
import { connect, createServer, type AddressInfo } from 'node:net'
import type { Teardown } from './tap.js'

/**
 * A port on 127.0.0.1 that was free a moment ago (bound on port 0, then
 * released): nothing listens on it, so connecting is refused. Also the port
 * for a program that cannot be told to pick one itself.
 */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Whether something accepts connections at `target` (a TCP port on `host`, or a unix socket path). */
export async function accepts (target: number | string, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = typeof target === 'number' ? connect(target, host) : connect(target)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

/** Starts an HTTP(S) `server` on 127.0.0.1 port 0; at teardown drops every connection and closes it. Returns the port. */
export async function listenHttp (t: Teardown, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

// SPEC "Every exchange ends", forward proxy (issue 13, item 9): a proxy that
// accepts CONNECT and then stays silent, or answers it and never speaks TLS.
// Every client gets 504 at http.connection.timeout, and the tunnel's socket
// closes with it: none stays open outside max-total, none outlives close().
import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { openFds } from '../helpers/fds.js'
import { BOUND_MS, config, eventually, gateway, pool, type Tap } from '../helpers/resilience.js'

/** A proxy that reads each CONNECT and then, per `answer`, says nothing or only "200". */
async function silentProxy (t: Tap, answer: boolean) {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server = createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    socket.once('data', () => { if (answer) socket.write('HTTP/1.1 200 Connection established\r\n\r\n') })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as { port: number }).port, get open () { return sockets.size }, get accepted () { return accepted } }
}

for (const answer of [false, true]) {
  const what = answer ? 'answers CONNECT, then never speaks TLS' : 'accepts CONNECT and stays silent'
  t.test(`a proxy that ${what}: 504 for each client, and each tunnel's socket is closed`, async (t) => {
    const proxy = await silentProxy(t, answer)
    const fds = openFds()
    const gw = await gateway(t, config(pool('px', {
      default: 'true',
      'http.route.default-proxy': `127.0.0.1:${proxy.port}`,
      'http.connection.timeout': 300,
      'http.conn-manager.max-total': 2,
      'http.conn-manager.max-per-route': 2,
      'x:retry.max-attempts': 1
    })))
    for (let i = 0; i < 5; i++) {
      const res = await gw.forward('px', 'https://127.0.0.1:9/secure')
      t.equal(res.statusCode, 504)
      t.equal(res.json().code, 'FST_HTTP_POOLS_CONNECT_TIMEOUT')
    }
    t.equal(proxy.accepted, 5, 'one tunnel per request')
    t.ok(await eventually(() => proxy.open === 0, BOUND_MS), `every tunnel's socket was closed (${proxy.open} open)`)
    await gw.app.close()
    t.ok(await eventually(() => openFds() <= fds, BOUND_MS), `the process's open file descriptors return to ${fds} (${openFds()})`)
  })
}

'use strict'
// One benchmark case as a Fastify server: node bench/server.js CASE PORT UPSTREAM
// (PORT 0: any free port). Started by bench/run.js over an IPC channel, it
// reports { ready: port }, answers 'stats' with { stats, connects, cpu, p99Ms }
// (the plugin's pool stats, null for a case without the plugin, the upstream
// connections opened so far, process.cpuUsage(), and the 99th percentile of
// the server's own latency since the previous 'stats'), and exits when the
// parent goes away; run by hand, it prints its address.
const diagnostics = require('node:diagnostics_channel')
const { createHistogram } = require('node:perf_hooks')
const Fastify = require('fastify')
const { exitOnStop } = require('./processes.js')
const { cases } = require('./cases.js')

// Every undici Client (the plugin's and reply-from's) publishes here once per
// new socket, whatever its connector: a count that costs nothing per request.
let connects = 0
diagnostics.subscribe('undici:client:connected', () => { connects++ })

async function main () {
  const [name, portArg, upstream] = process.argv.slice(2)
  const names = cases.filter((c) => c.setup).map((c) => c.name).join(', ')
  const spec = cases.find((c) => c.name === name && c.setup)
  const port = Number(portArg)
  if (spec === undefined || !Number.isInteger(port) || port < 0 || port > 65535 || !upstream) {
    throw new Error(`usage: node bench/server.js CASE PORT UPSTREAM (CASE: ${names}; PORT 0 for any free port)`)
  }
  const app = Fastify({ logger: false })
  // The gateway's own latency, from the request reaching the server to its
  // response handed to the socket: wrk's latency minus the kernel's, wrk's
  // and the scheduler's share. The same few calls per request in every case.
  let latency = createHistogram()
  app.server.prependListener('request', (req, res) => {
    const start = process.hrtime.bigint()
    res.once('finish', () => latency.record(Number(process.hrtime.bigint() - start)))
  })
  await spec.setup(app, new URL(upstream).origin)
  await app.listen({ port, host: '127.0.0.1' })
  const actual = app.server.address().port

  exitOnStop(app)
  if (process.send) {
    process.on('message', (msg) => {
      if (msg !== 'stats') return
      // The latency histogram covers the time since the previous 'stats'.
      const p99Ms = latency.count === 0 ? null : latency.percentile(99) / 1e6
      latency = createHistogram()
      process.send({ stats: app.pools ? app.pools.stats() : null, connects, cpu: process.cpuUsage(), p99Ms })
    })
    process.send({ ready: actual })
  } else {
    console.log(`${name}: http://127.0.0.1:${actual}/ -> ${upstream}`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

'use strict'
// Soak run (issue 13): SOAK_SECONDS (default 60) of mixed traffic through one
// gateway process, all on 127.0.0.1: normal requests to a healthy origin,
// clients that abort at random points (before the response, mid-body,
// mid-upload), requests to an origin that fails at random (resets, 503s,
// stalls), and a reload every 2 s that replaces every pool. It reports the
// requests that should have succeeded and did not (the goal: 0), and the
// gateway's heap (after a full GC), open file descriptors and handles at the
// start and at the end (the goal: flat; open fds are compared beyond the
// pools' own keep-alive connections). Exits 1 when a request was lost,
// something was left running or fds grew. Usage: npm run build && node bench/soak.js
const { fork } = require('node:child_process')
const { createServer } = require('node:http')
const { connect } = require('node:net')
const { once } = require('node:events')
const { join } = require('node:path')
const { Agent, request } = require('undici')

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60)
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 32)
const RELOAD_MS = 2000

// A fixed seed: a run can be repeated exactly (SOAK_SEED to vary it).
let seed = Number(process.env.SOAK_SEED ?? 12345)
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

async function listen (server) {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${server.address().port}`
}

const healthy = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain')
    // A body of a few KiB, written in two parts, so that aborts can land mid-body.
    res.write('a'.repeat(2048))
    setImmediate(() => res.end('b'.repeat(2048)))
  })
})

const faulty = createServer((req, res) => {
  const r = random()
  if (r < 0.3) req.socket.destroy()
  else if (r < 0.6) { res.statusCode = 503; res.end('busy') } else if (r < 0.7) { /* stall: the socket timeout ends it */ } else res.end('ok')
})

function measure (gw) {
  return new Promise((resolve) => {
    gw.once('message', resolve)
    gw.send('measure')
  })
}

/** A raw client that sends a request and leaves at a random point. */
function abortingClient (gwOrigin, target, upload) {
  return new Promise((resolve) => {
    const url = new URL(gwOrigin)
    const socket = connect(Number(url.port), url.hostname)
    socket.on('error', () => {})
    socket.on('close', resolve)
    const path = `/main/x?to=${encodeURIComponent(target)}`
    socket.on('connect', () => {
      if (upload) socket.write(`PUT ${path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/octet-stream\r\ncontent-length: 65536\r\n\r\n${'u'.repeat(1024)}`)
      else socket.write(`GET ${path} HTTP/1.1\r\nhost: gw\r\n\r\n`)
      const after = Math.floor(random() * 20)
      setTimeout(() => socket.destroy(), after)
    })
  })
}

async function main () {
  const healthyOrigin = await listen(healthy)
  const faultyOrigin = await listen(faulty)
  const gw = fork(join(__dirname, 'soak-gateway.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [{ ready }] = await once(gw, 'message')
  const gwOrigin = `http://127.0.0.1:${ready}`
  const client = new Agent({ connections: CLIENTS })
  const counts = { ok: 0, lost: 0, aborted: 0, faulty: 0, reloads: 0, failedReloads: 0 }
  const lostSamples = []

  const normal = async () => {
    const res = await request(`${gwOrigin}/main/x?to=${encodeURIComponent(`${healthyOrigin}/item`)}`, { dispatcher: client, signal: AbortSignal.timeout(10_000) })
    const body = await res.body.text()
    if (res.statusCode === 200 && body.length === 4096) counts.ok++
    else {
      counts.lost++
      if (lostSamples.length < 5) lostSamples.push(`${res.statusCode} ${body.slice(0, 120)}`)
    }
  }
  const toFaulty = async () => {
    const res = await request(`${gwOrigin}/faulty/x?to=${encodeURIComponent(`${faultyOrigin}/item`)}`, { dispatcher: client, signal: AbortSignal.timeout(10_000) })
    await res.body.dump()
    counts.faulty++
  }

  // Warm-up, then the starting measurement.
  for (let i = 0; i < 200; i++) await normal()
  const start = await measure(gw)
  counts.ok = 0

  const end = Date.now() + SECONDS * 1000
  const reloads = setInterval(() => {
    gw.send('reload')
    gw.once('message', (m) => { if (m.reloaded) counts.reloads++; else counts.failedReloads++ })
  }, RELOAD_MS)
  const loop = async () => {
    while (Date.now() < end) {
      const r = random()
      try {
        if (r < 0.7) await normal()
        else if (r < 0.8) { await abortingClient(gwOrigin, `${healthyOrigin}/item`, false); counts.aborted++ } else if (r < 0.85) { await abortingClient(gwOrigin, `${healthyOrigin}/item`, true); counts.aborted++ } else await toFaulty()
      } catch (err) {
        // A normal request that threw was lost too.
        if (r < 0.7) {
          counts.lost++
          if (lostSamples.length < 5) lostSamples.push(err.message)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, loop))
  clearInterval(reloads)
  await client.close()
  // Let the last exchanges and retired pools settle, then the final measurement.
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const last = await measure(gw)
  gw.disconnect()
  healthy.close()
  faulty.close()

  const running = Object.values(last.stats).reduce((n, s) => n + s.running + s.pending, 0)
  // The pools keep idle keep-alive connections (keepalive.timeout 0: until the server closes them):
  // each is an fd by design. What is left beyond them would be a leak.
  const connected = (m) => Object.values(m.stats).reduce((n, s) => n + s.connected, 0)
  const mib = (b) => (b / 1024 / 1024).toFixed(1)
  const report = {
    seconds: SECONDS,
    clients: CLIENTS,
    ...counts,
    heapMiB: { start: mib(start.heapUsed), end: mib(last.heapUsed) },
    fds: { start: start.fds, end: last.fds },
    poolConnections: { start: connected(start), end: connected(last) },
    fdsBeyondPoolConnections: { start: start.fds - connected(start), end: last.fds - connected(last) },
    handles: { start: start.handles, end: last.handles },
    runningOrPendingAtEnd: running,
    lostSamples
  }
  console.log(JSON.stringify(report, null, 2))
  if (counts.lost > 0 || running > 0 || counts.failedReloads > 0 || last.fds - connected(last) > start.fds - connected(start)) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

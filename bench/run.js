'use strict'
// npm run bench: nginx as the upstream, each case of bench/cases.js as a
// Fastify server in its own process, wrk as the load. Alternated rounds, every
// case once per round in a rotated order (BENCH_MODE=concurrent: all cases of a
// round at the same time), each counted run on a server started and warmed
// just for it; medians and per-round ratios against each case's
// baseline; PASS/FAIL for the cases with a target. With an https case among
// them, nginx also listens with TLS, on a certificate issued at start by the
// test CA. See BENCHMARKS.md.
//
// Env: BENCH_DURATION (seconds per run, default 5), BENCH_ROUNDS (default 5),
// BENCH_CONNECTIONS (wrk -c, default 64), BENCH_WARMUP (seconds of the
// uncounted warm-up run before every counted run, default 3), BENCH_CASES
// (comma-separated names, default all; a case's baseline is added when missing),
// BENCH_STRICT (1: exit 1 when a target fails), BENCH_NODE_ARGS (Node/V8
// flags for every case server alike, e.g. "--max-semi-space-size=16"),
// BENCH_MODE (sequential, the default, or concurrent).

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { cases: ALL_CASES } = require('./cases.js')
const { BODY, bodyOf, Nginx } = require('./nginx.js')
const {
  BenchError, findExecutable, MEASURED_CPU, LOAD_CPU, pinned,
  track, alive, isShuttingDown, stopChild, makeTmpDir, runBench, tail, untilReady, askStats,
  machine
} = require('./processes.js')

const RESULTS = path.join(__dirname, 'results.json')
const SERVER = path.join(__dirname, 'server.js')

// ---------------------------------------------------------------- settings

function positiveInt (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new BenchError(`${name}="${raw}" is not a positive integer`)
  return n
}

function benchMode () {
  const raw = process.env.BENCH_MODE
  if (raw === undefined || raw === '') return 'sequential'
  if (raw !== 'sequential' && raw !== 'concurrent') throw new BenchError(`BENCH_MODE="${raw}" is neither sequential nor concurrent`)
  return raw
}

// `direct` is nginx itself: in concurrent mode it would be measured while
// serving the other cases, so that mode leaves it out (and reply-from's ratio to it).
const runsIn = (mode) => (c) => mode === 'sequential' || c.setup !== undefined

function selectCases (mode) {
  const raw = process.env.BENCH_CASES
  if (raw === undefined || raw.trim() === '') return ALL_CASES.filter(runsIn(mode))
  const named = new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))
  for (const name of named) {
    if (!ALL_CASES.some((c) => c.name === name)) {
      throw new BenchError(`BENCH_CASES: no case "${name}" (cases: ${ALL_CASES.map((c) => c.name).join(', ')})`)
    }
    if (!runsIn(mode)(ALL_CASES.find((c) => c.name === name))) throw new BenchError(`BENCH_CASES: case "${name}" does not run in ${mode} mode`)
  }
  // A named case's ratios need its baseline in the same rounds. Only one level:
  // the baseline's own baseline is not added unless named too (its ratio is then
  // left out), so a group runs as a pair and the pair's runs stay close together.
  const wanted = new Set(named)
  for (const c of ALL_CASES) if (named.has(c.name) && c.baseline) wanted.add(c.baseline)
  return ALL_CASES.filter((c) => wanted.has(c.name) && runsIn(mode)(c))
}

// ---------------------------------------------------------------- tools and machine

function requireTools (https) {
  const nginx = findExecutable('nginx', ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin'])
  const wrk = findExecutable('wrk', ['/usr/local/bin'])
  // Only to issue nginx's certificate for the https cases.
  const openssl = https ? findExecutable('openssl', ['/usr/local/bin']) : undefined
  const missing = [!nginx && 'nginx', !wrk && 'wrk', https && !openssl && 'openssl'].filter(Boolean)
  if (missing.length > 0) {
    throw new BenchError(`npm run bench needs ${missing.join(' and ')} (looked on PATH, then in /usr/sbin, /usr/local/sbin, /usr/local/bin). ` +
      `On Debian/Ubuntu: apt-get install -y ${missing.join(' ')}  (.ci/run installs them in CI)`)
  }
  return { nginx, wrk, openssl }
}

// ---------------------------------------------------------------- nginx

/**
 * A certificate for 127.0.0.1 (and localhost) issued by the test CA, in `dir`:
 * a P-256 key, so that nginx's share of each handshake stays small next to
 * the client side that the https cases measure.
 */
function issueServerCertificate (openssl, dir) {
  const p = (name) => path.join(dir, name)
  const { TLS_FIXTURES } = require('./cases.js')
  fs.writeFileSync(p('server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n')
  const steps = [
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-keyout', p('server.key'), '-out', p('server.csr')],
    ['x509', '-req', '-in', p('server.csr'), '-CA', path.join(TLS_FIXTURES, 'ca.pem'), '-CAkey', path.join(TLS_FIXTURES, 'ca.key'),
      '-set_serial', String(Date.now()), '-days', '2', '-sha256', '-extfile', p('server.ext'), '-out', p('server.pem')]
  ]
  for (const args of steps) {
    const r = spawnSync(openssl, args, { encoding: 'utf8', timeout: 15000 })
    if (r.status !== 0) throw new BenchError(`openssl ${args[0]} failed while issuing nginx's certificate:\n${r.stderr || r.error}`)
  }
  return { cert: p('server.pem'), key: p('server.key') }
}

/** The upstream of every case, in `dir`; with `certificate`, also on a TLS port for the https cases. */
async function startNginx (bin, dir, connections, certificate) {
  const nginx = new Nginx(bin, { dir, workerConnections: Math.max(1024, 2 * connections + 256), certificate, pollMs: 50 })
  await nginx.start()
  // No stderr: checkAlive tells nginx from a case server by it.
  return { port: nginx.port, url: nginx.url, httpsUrl: nginx.httpsUrl, child: nginx.child }
}

// ---------------------------------------------------------------- case servers

function nodeArgs () {
  const args = (process.env.BENCH_NODE_ARGS || '').split(/\s+/).filter(Boolean)
  const bad = args.find((a) => !a.startsWith('--'))
  if (bad !== undefined) throw new BenchError(`BENCH_NODE_ARGS: "${bad}" is not a --flag`)
  return args
}

function startServer (spec, upstream, flags) {
  const child = track(spawn(...pinned(MEASURED_CPU, process.execPath, [...flags, SERVER, spec.name, '0', upstream]), {
    cwd: path.join(__dirname, '..'),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  }), spec.name)
  const stderr = tail(child.stderr)
  return untilReady(child, stderr, `case ${spec.name}: server`).then((msg) =>
    ({ port: msg.ready, url: `http://127.0.0.1:${msg.ready}`, child, stderr }))
}

/**
 * The case server's counters: `stats` (the plugin's `app.pools.stats()`, null
 * without the plugin), `connects` (upstream connections opened so far), `cpu`
 * (its process.cpuUsage()) and `p99Ms` (its own latency's 99th percentile
 * since the previous reading). Asked for outside wrk's timed runs only.
 */
async function serverCounters (child) {
  const msg = await askStats(child, `case ${child.label}`)
  return { stats: msg.stats, connects: msg.connects, cpu: msg.cpu, p99Ms: msg.p99Ms }
}

const POOL_COUNTERS = ['requests', 'errors', 'retries', 'cacheHits', 'cacheCoalesced', 'cacheMisses']

/** What the server did upstream between two `serverCounters` readings: counters of `pool`, and new connections. */
function upstreamDelta (before, after, pool) {
  const delta = { connects: after.connects - before.connects }
  const b = before.stats?.[pool]
  const a = after.stats?.[pool]
  if (a && b) for (const key of POOL_COUNTERS) delta[key] = (a[key] ?? 0) - (b[key] ?? 0)
  return delta
}

/** CPU time (user + system, all threads) the case server spent per request (wrk's total) between two readings, in µs. */
function cpuPerRequest (before, after, requests) {
  const us = (after.cpu.user - before.cpu.user) + (after.cpu.system - before.cpu.system)
  return round2(us / Math.max(1, requests))
}

/** One plain GET before any load: the case must answer the upstream's body. */
function probe (url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.once('timeout', () => req.destroy(new Error('timed out')))
    req.once('error', reject)
  })
}

/** A server (or nginx) that died during a run is an error of the run, not a low number. */
function checkAlive (spec, targets) {
  for (const [name, t] of Object.entries(targets)) {
    if (!alive(t.child) && !isShuttingDown()) {
      const who = t.stderr ? `server of case ${name}` : 'nginx'
      throw new BenchError(`the ${who} exited during the ${spec.name} run (${t.child.signalCode || `code ${t.child.exitCode}`})\n${t.stderr ? t.stderr.text.trim() : ''}`)
    }
  }
}

/**
 * Starts the server of one case afresh (nginx itself for `direct`): it must
 * answer GET / with the upstream's body. A fresh process per counted run,
 * because two processes of the same case, warmed alike, differ by 10 to 20 %
 * in CPU per request (JIT and heap luck): a server kept for the whole run
 * would carry its luck into every round's ratio.
 */
async function startCase (spec, upstream, settings) {
  const target = spec.setup ? await startServer(spec, spec.https ? upstream.httpsUrl : upstream.url, settings.nodeArgs) : upstream
  const started = { spec, target, targets: { [spec.name]: target, nginx: upstream }, server: spec.setup ? target.child : undefined }
  const url = caseUrl(started)
  const res = await probe(url)
  const expected = spec.path === undefined ? BODY : bodyOf(spec.path)
  if (res.status !== 200 || res.body !== expected) {
    throw new BenchError(`case ${spec.name}: GET ${url} answered ${res.status} ${JSON.stringify(res.body.slice(0, 300))}, not 200 with the ${expected.length} bytes of nginx's ${spec.path ?? '/'}`)
  }
  return started
}

/** What wrk asks a started case for: its `path` (nginx's sized bodies), `/` by default. */
const caseUrl = (c) => `${c.target.url}${c.spec.path ?? '/'}`

/**
 * The uncounted warm-up run of started cases, all at once; after it a plugin
 * case must show its requests on the expected pool. It comes right before the
 * counted run, with no other case in between, so the counted run starts on
 * the heap and code the warm-up left.
 */
async function warmUp (list, tools, settings) {
  const warm = await Promise.all(list.map((c) => wrk(tools.wrk, caseUrl(c), settings.warmupSeconds, wrkConnections(c.spec, settings))))
  for (const [i, c] of list.entries()) {
    checkAlive(c.spec, c.targets)
    if (warm[i].non2xx > 0) throw new BenchError(`case ${c.spec.name}: ${warm[i].non2xx} non-2xx responses during warm-up`)
    if (c.spec.pool) checkPool(c.spec, (await serverCounters(c.server)).stats)
    c.warmRps = warm[i].rps
  }
}

/**
 * The counted run of started cases, all at once: the servers' counters are
 * read just before the first wrk starts and just after the last one ends,
 * never during the timed runs.
 */
async function countedRuns (list, tools, settings, r) {
  const counters = () => Promise.all(list.map((c) => c.server && serverCounters(c.server)))
  const before = await counters()
  const results = await Promise.all(list.map((c) => wrk(tools.wrk, caseUrl(c), settings.duration, wrkConnections(c.spec, settings))))
  const after = await counters()
  return list.map((c, i) => countedRun(c, results[i], before[i], after[i], settings, r))
}

/** One case's counted run: checked, logged, and kept as the round's value. */
function countedRun ({ spec, targets, warmRps }, res, before, after, settings, r) {
  checkAlive(spec, targets)
  if (res.non2xx > 0) throw new BenchError(`case ${spec.name}: ${res.non2xx} non-2xx responses in round ${r + 1}: not a forwarding measurement`)
  const run = { rps: round2(res.rps), p99: round3(res.p99), requests: res.requests, socketErrors: res.socketErrors }
  if (before) {
    run.cpuUs = cpuPerRequest(before, after, res.requests)
    run.gatewayP99 = round3(after.p99Ms)
    run.upstream = upstreamDelta(before, after, spec.pool ?? 'default')
  }
  const errs = res.socketErrors
  const errText = errs ? `  socket errors: connect ${errs.connect}, read ${errs.read}, write ${errs.write}, timeout ${errs.timeout}` : ''
  const cpuText = run.cpuUs === undefined ? '' : `  CPU ${run.cpuUs.toFixed(1)} µs/req  gateway p99 ${run.gatewayP99.toFixed(2)} ms`
  console.log(`round ${r + 1}/${settings.rounds}  ${spec.name.padEnd(16)} ${String(Math.round(res.rps)).padStart(7)} req/s  p99 ${res.p99.toFixed(2).padStart(7)} ms${cpuText}  (warm-up ${Math.round(warmRps)} req/s)${upstreamText(spec, run)}${errText}`)
  // wrk counts only the requests it saw completed, so the server made at least
  // that many; a request wrk abandoned as the warm-up ended may have left one
  // connection per wrk connection open and idle, which the counted run then uses.
  if (spec.connectionPerRequest && run.upstream.connects + wrkConnections(spec, settings) < res.requests) {
    throw new BenchError(`case ${spec.name}: ${run.upstream.connects} upstream connection(s) opened for ${res.requests} requests in round ${r + 1}: connections are being kept alive`)
  }
  if (spec.lifetime) {
    // Each busy socket is replaced about once per lifetime; half that rate is the floor, so only an ignored lifetime fails.
    const expected = Math.max(1, Math.floor(settings.duration * 1000 / (2 * spec.lifetime)))
    if (run.upstream.connects < expected) {
      throw new BenchError(`case ${spec.name}: ${run.upstream.connects} upstream connection(s) opened in a ${settings.duration} s run with a ${spec.lifetime} ms lifetime (at least ${expected} expected): connections are not being rotated`)
    }
  }
  return run
}

/**
 * One round: in `sequential` mode each case alone in turn (start, warm up,
 * count, stop); in `concurrent` mode every case's server started in turn, then
 * all warmed up and counted at the same time, each under its own wrk, so
 * whatever the machine does during the round it does to every case.
 */
async function runRound (order, upstream, tools, settings, r) {
  const groups = settings.mode === 'concurrent' ? [order] : order.map((spec) => [spec])
  const round = {}
  for (const group of groups) {
    const list = []
    try {
      for (const spec of group) list.push(await startCase(spec, upstream, settings))
      await warmUp(list, tools, settings)
      const runs = await countedRuns(list, tools, settings, r)
      for (const [i, c] of list.entries()) round[c.spec.name] = runs[i]
    } finally {
      await Promise.all(list.map((c) => c.server && stopChild(c.server)))
    }
  }
  return round
}

/** After warm-up, the case's pool (and no other) must have carried the requests, and a caching case must show sharing. */
function checkPool (spec, stats) {
  const carried = stats?.[spec.pool]?.requests ?? 0
  const others = Object.entries(stats || {}).filter(([id]) => id !== spec.pool).reduce((n, [, s]) => n + s.requests, 0)
  if (carried === 0 || others > 0) {
    throw new BenchError(`case ${spec.name}: expected pool "${spec.pool}" to carry the requests; pool stats: ${JSON.stringify(stats)}`)
  }
  const shared = stats[spec.pool].cacheHits + stats[spec.pool].cacheCoalesced
  if (spec.cached && !(shared > 0)) {
    throw new BenchError(`case ${spec.name}: expected cache hits or coalesced requests on pool "${spec.pool}" after warm-up; pool stats: ${JSON.stringify(stats[spec.pool])}`)
  }
}

// ---------------------------------------------------------------- wrk

const TIME_UNITS = { us: 0.001, ms: 1, s: 1000, m: 60000, h: 3600000 }

function toMs (text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  if (!m) throw new BenchError(`cannot read wrk latency "${text}"`)
  return Number(m[1]) * TIME_UNITS[m[2]]
}

function parseWrk (out) {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out)
  const p99 = /^\s+99(?:\.0+)?%\s+(\S+)/m.exec(out)
  const total = /^\s+(\d+) requests in/m.exec(out)
  if (!rps || !p99 || !total) throw new BenchError(`cannot read wrk output:\n${out}`)
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rps: Number(rps[1]),
    p99: toMs(p99[1]),
    requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : null
  }
}

/** wrk -c for a case: BENCH_CONNECTIONS, capped by the case's `maxConnections`. */
function wrkConnections (spec, settings) {
  return Math.min(settings.connections, spec.maxConnections ?? Infinity)
}

function wrk (bin, url, seconds, connections) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url]
  const child = track(spawn(...pinned(LOAD_CPU, bin, args), { stdio: ['ignore', 'pipe', 'pipe'] }), 'wrk')
  const stdout = tail(child.stdout, 100000)
  const stderr = tail(child.stderr)
  return new Promise((resolve, reject) => {
    // wrk stops itself after -d; this bounds a wedged run.
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new BenchError(`wrk ${args.join(' ')} failed (${signal || `code ${code}`}):\n${stderr.text}${stdout.text}`))
      try { resolve(parseWrk(stdout.text)) } catch (err) { reject(err) }
    })
  })
}

// ---------------------------------------------------------------- statistics and output

function median (values) {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const round2 = (n) => Math.round(n * 100) / 100
const round3 = (n) => Math.round(n * 1000) / 1000

function summarize (specs, rounds) {
  const summary = {}
  for (const spec of specs) {
    const runs = rounds.map((r) => r[spec.name])
    const rps = runs.map((x) => x.rps)
    const entry = {
      what: spec.what,
      rps: { median: Math.round(median(rps)), min: Math.round(Math.min(...rps)), max: Math.round(Math.max(...rps)) },
      p99Ms: { median: round3(median(runs.map((x) => x.p99))), min: round3(Math.min(...runs.map((x) => x.p99))), max: round3(Math.max(...runs.map((x) => x.p99))) }
    }
    if (spec.setup) {
      entry.cpuUsPerRequest = round2(median(runs.map((x) => x.cpuUs)))
      entry.gatewayP99Ms = round3(median(runs.map((x) => x.gatewayP99)))
    }
    if (spec.baseline && specs.some((s) => s.name === spec.baseline)) {
      // Ratios are taken round by round (both cases ran minutes apart at most), then the median.
      const ratios = rpsRatios(rounds, spec)
      entry.vs = {
        baseline: spec.baseline,
        rpsRatio: round3(median(ratios)),
        rpsRatioMin: round3(Math.min(...ratios)),
        rpsRatioMax: round3(Math.max(...ratios)),
        p99Ratio: round3(median(p99Ratios(rounds, spec)))
      }
      // CPU per request of the case server: less disturbed by the load generator and nginx on the other core than req/s.
      const base = specs.find((s) => s.name === spec.baseline)
      if (spec.setup && base.setup) {
        entry.vs.cpuRatio = round3(median(rounds.map((r) => r[spec.name].cpuUs / r[spec.baseline].cpuUs)))
        entry.vs.gatewayP99Ratio = round3(median(gatewayP99Ratios(rounds, spec)))
      }
    }
    if (runs[0].upstream) {
      // Totals over the counted runs.
      const sum = (key) => runs.reduce((n, x) => n + (x.upstream[key] ?? 0), 0)
      entry.upstream = { connects: sum('connects') }
      if (runs[0].upstream.requests !== undefined) {
        for (const key of POOL_COUNTERS) entry.upstream[key] = sum(key)
        entry.upstream.clientRequests = runs.reduce((n, x) => n + x.requests, 0)
      }
    }
    summary[spec.name] = entry
  }
  return summary
}

const rpsRatios = (rounds, spec) => rounds.map((r) => r[spec.name].rps / r[spec.baseline].rps)
const p99Ratios = (rounds, spec) => rounds.map((r) => r[spec.name].p99 / r[spec.baseline].p99)
const gatewayP99Ratios = (rounds, spec) => rounds.map((r) => r[spec.name].gatewayP99 / r[spec.baseline].gatewayP99)

function table (summary) {
  const head = ['case', 'req/s median', 'req/s min-max', 'p99 ms median', 'CPU µs/req', 'gw p99 ms', 'baseline', 'req/s ratio', 'ratio min-max', 'p99 ratio', 'CPU ratio', 'gw p99 ratio']
  const rows = Object.entries(summary).map(([name, s]) => [
    name,
    String(s.rps.median),
    `${s.rps.min}-${s.rps.max}`,
    s.p99Ms.median.toFixed(2),
    s.cpuUsPerRequest === undefined ? '-' : s.cpuUsPerRequest.toFixed(1),
    s.gatewayP99Ms === undefined ? '-' : s.gatewayP99Ms.toFixed(2),
    s.vs ? s.vs.baseline : '-',
    s.vs ? s.vs.rpsRatio.toFixed(3) : '-',
    s.vs ? `${s.vs.rpsRatioMin.toFixed(3)}-${s.vs.rpsRatioMax.toFixed(3)}` : '-',
    s.vs ? s.vs.p99Ratio.toFixed(3) : '-',
    s.vs?.cpuRatio === undefined ? '-' : s.vs.cpuRatio.toFixed(3),
    s.vs?.gatewayP99Ratio === undefined ? '-' : s.vs.gatewayP99Ratio.toFixed(3)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

// ---------------------------------------------------------------- targets

/** Upstream exchanges per client request (wrk's total) in one counted run; undefined without pool counters. */
const upstreamRatio = (run) => run.upstream?.requests === undefined ? undefined : run.upstream.requests / Math.max(1, run.requests)

function spread (values, digits) {
  const f = (n) => Number(n.toFixed(digits))
  return { median: f(median(values)), min: f(Math.min(...values)), max: f(Math.max(...values)), rounds: values.map(f) }
}

/**
 * The acceptance targets of the selected cases. Each is checked on the median
 * over rounds of a per-round value; min and max over rounds are its spread.
 */
function checkTargets (specs, rounds, settings) {
  const out = []
  for (const spec of specs) {
    const t = spec.target
    if (!t || !specs.some((s) => s.name === spec.baseline)) continue
    const base = { issue: t.issue, case: spec.name, baseline: spec.baseline }
    const note = t.minConnections !== undefined && settings.connections < t.minConnections
      ? `stated for wrk -c >= ${t.minConnections}, run with -c${settings.connections}`
      : undefined
    const result = (pass) => note ? 'N/A' : pass ? 'PASS' : 'FAIL'
    if (t.minRpsRatio !== undefined) {
      const s = spread(rpsRatios(rounds, spec), 3)
      out.push({ ...base, metric: `req/s ${spec.name} / ${spec.baseline}`, target: `>= ${t.minRpsRatio}`, ...s, result: result(s.median >= t.minRpsRatio), note })
    }
    if (t.maxP99Ratio !== undefined) {
      const s = spread(p99Ratios(rounds, spec), 3)
      out.push({ ...base, metric: `p99 ${spec.name} / ${spec.baseline}`, target: `<= ${t.maxP99Ratio}`, ...s, result: result(s.median <= t.maxP99Ratio), note })
      // The same bound on the gateways' own p99, without the kernel's and wrk's share (see BENCHMARKS.md).
      const g = spread(gatewayP99Ratios(rounds, spec), 3)
      out.push({ ...base, metric: `gateway p99 ${spec.name} / ${spec.baseline}`, target: `<= ${t.maxP99Ratio}`, ...g, result: result(g.median <= t.maxP99Ratio), note })
    }
    if (t.maxUpstreamRatio !== undefined) {
      const s = spread(rounds.map((r) => upstreamRatio(r[spec.name])), 5)
      out.push({ ...base, metric: `upstream requests / client requests of ${spec.name}`, target: `<= ${round3(t.maxUpstreamRatio)} (1/${Math.round(1 / t.maxUpstreamRatio)})`, ...s, result: result(s.median <= t.maxUpstreamRatio), note })
    }
  }
  return out
}

function targetLine (t) {
  const n = t.rounds.length
  const caveat = [t.note, n < 3 && `${n} round${n > 1 ? 's' : ''}: indicative only`].filter(Boolean).join('; ')
  return `${t.result.padEnd(4)}  issue ${t.issue}  ${t.metric}: median ${t.median} (spread ${t.min}-${t.max} over ${n} round${n > 1 ? 's' : ''}), target ${t.target}${caveat ? `  [${caveat}]` : ''}`
}

/** The round line's upstream part: new connections; for a caching case, exchanges per client request and the cache counters. */
function upstreamText (spec, run) {
  if (!run.upstream) return ''
  const u = run.upstream
  let text = `  conns +${u.connects}`
  if (u.requests !== undefined && (spec.cached || spec.target?.maxUpstreamRatio !== undefined)) {
    text += `  upstream ${u.requests} / client ${run.requests} = ${upstreamRatio(run).toFixed(5)}` +
      ` (hits ${u.cacheHits}, coalesced ${u.cacheCoalesced}, misses ${u.cacheMisses})`
  }
  return text
}

// ---------------------------------------------------------------- main

async function main () {
  const duration = positiveInt('BENCH_DURATION', 5)
  const roundCount = positiveInt('BENCH_ROUNDS', 5)
  const connections = positiveInt('BENCH_CONNECTIONS', 64)
  const warmup = positiveInt('BENCH_WARMUP', 3)
  const strict = process.env.BENCH_STRICT === '1'
  const mode = benchMode()
  const specs = selectCases(mode)
  const tools = requireTools(specs.some((c) => c.https))
  const info = machine(tools)
  const settings = { mode, duration, rounds: roundCount, connections, threads: 1, warmupSeconds: warmup, nodeArgs: nodeArgs() }

  console.log(`machine: ${info.nproc} CPUs, ${info.cpu}; node ${info.node}; ${info.nginx}; ${info.wrk}; load ${info.loadavg.join(' ')}`)
  const capped = specs.filter((c) => wrkConnections(c, settings) < connections).map((c) => `${c.name} -c${wrkConnections(c, settings)}`)
  console.log(`load: wrk -t1 -c${connections} -d${duration}s --latency per case${capped.length > 0 ? ` (${capped.join(', ')})` : ''}, ${mode}, ${roundCount} round(s), cases: ${specs.map((c) => c.name).join(', ')}`)
  if (settings.nodeArgs.length > 0) console.log(`case servers run with: node ${settings.nodeArgs.join(' ')}`)

  const tmpDir = makeTmpDir('fastify-http-pools-bench-')
  const certificate = tools.openssl ? issueServerCertificate(tools.openssl, tmpDir) : undefined
  const upstream = await startNginx(tools.nginx, tmpDir, mode === 'concurrent' ? connections * specs.length : connections, certificate)
  console.log(`upstream: nginx on ${upstream.url}${upstream.httpsUrl ? ` and ${upstream.httpsUrl}` : ''}`)

  const rounds = []
  const n = specs.length
  for (let r = 0; r < roundCount; r++) {
    // The cases form a ring in cases.js order. Round r starts at case r and walks
    // forwards in even rounds, backwards in odd ones: no case always runs first,
    // and a case and the baseline next to it run back to back, each of the two
    // first in every other round, so an order effect cancels out of their ratio.
    const step = r % 2 === 0 ? 1 : -1
    const order = specs.map((_, i) => specs[(((r + step * i) % n) + n) % n])
    const round = await runRound(order, upstream, tools, settings, r)
    rounds.push({ order: order.map((s) => s.name), ...round })
  }

  const summary = summarize(specs, rounds)
  console.log(`\n${table(summary)}`)
  const targetResults = checkTargets(specs, rounds, settings)
  if (targetResults.length > 0) {
    console.log('\ntargets (median over rounds of the per-round value; spread = min-max over rounds):')
    for (const t of targetResults) console.log(targetLine(t))
  }
  info.loadavgEnd = os.loadavg().map((n) => Number(n.toFixed(2)))
  const results = { date: new Date().toISOString(), machine: info, settings, upstream: `nginx, return 200 'hello world'${upstream.httpsUrl ? '; https cases: TLS, P-256 certificate from the test CA' : ''}`, summary, targets: targetResults, rounds }
  fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
  console.log(`\nload average at the end: ${info.loadavgEnd.join(' ')}; written ${path.relative(process.cwd(), RESULTS)}`)
  if (strict && targetResults.some((t) => t.result === 'FAIL')) {
    console.error('bench: BENCH_STRICT=1 and a target failed')
    process.exitCode = 1
  }
}

runBench(main, 'bench')

'use strict'
// npm run bench:restarts (issue 18): how a gateway behaves while its upstreams
// restart. Two nginx upstreams behind one haproxy (TCP mode, round robin, as
// test/helpers/haproxy.ts), all on 127.0.0.1; the gateway's origin is
// haproxy's frontend. For each case, a fresh gateway process
// (bench/restarts-gateway.js) under steady wrk load for RESTARTS_SECONDS while
// the two nginx are killed and started again on the same port, one after the
// other, every RESTARTS_INTERVAL seconds. Cases: bare reply-from, the plugin
// with its defaults, with retries and x:connection.max-lifetime, and the same
// with the retry budget opened. Reports per case req/s, p50/p99, the
// client-visible errors (wrk's non-2xx responses and socket errors), the
// plugin's stats, the gateway's warn log lines by code, and haproxy's per
// server counters. See BENCHMARKS.md, "Issue 18: upstream restarts".
//
// Env: RESTARTS_SECONDS (counted seconds per case, default 60),
// RESTARTS_INTERVAL (seconds between two restarts, default 5),
// RESTARTS_CONNECTIONS (wrk -c, default 32), RESTARTS_WARMUP (seconds of an
// uncounted run without restarts before each case, default 3),
// RESTARTS_SIGNAL (KILL, the default, or TERM: how nginx is stopped),
// RESTARTS_CASES (comma-separated, default all), RESTARTS_STRICT (1: exit 1
// when the goal is not met), BENCH_PIN (0: no CPU pinning).

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { BODY, Nginx } = require('./nginx.js')
const {
  BenchError, findExecutable, MEASURED_CPU, LOAD_CPU, pinned,
  track, alive, isShuttingDown, stopChild, makeTmpDir, runBench, tail, freePort, sleep, untilAccepting, untilReady, askStats,
  machine
} = require('./processes.js')

const RESULTS = path.join(__dirname, 'results-restarts.json')
const GATEWAY = path.join(__dirname, 'restarts-gateway.js')

const CASES = [
  { name: 'reply-from', what: 'bare @fastify/reply-from, undici options of a default pool (as bench/cases.js reply-from)' },
  { name: 'plugin-default', what: 'the plugin, every default (3 attempts for GET, retry budget 20 % / min 3)', pool: 'default' },
  { name: 'plugin-retry-lifetime', what: 'the plugin, x:retry.max-attempts="3" (GET included) and x:connection.max-lifetime="1000"', pool: 'default', lifetime: 1000 },
  { name: 'plugin-retry-lifetime-budget', what: 'plugin-retry-lifetime plus x:retry.budget="100" (no retry budget)', pool: 'default', lifetime: 1000, budget: 100 }
]
// Issue 18's goal: the plugin with retries and a lifetime shows no client-visible
// error while bare reply-from shows some. Checked for both cases with retries on.
const GOAL = { plugins: ['plugin-retry-lifetime', 'plugin-retry-lifetime-budget'], bare: 'reply-from' }

// ---------------------------------------------------------------- settings

function positiveInt (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new BenchError(`${name}="${raw}" is not a positive integer`)
  return n
}

function selectCases () {
  const raw = process.env.RESTARTS_CASES
  if (raw === undefined || raw.trim() === '') return CASES
  const named = raw.split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of named) {
    if (!CASES.some((c) => c.name === name)) throw new BenchError(`RESTARTS_CASES: no case "${name}" (cases: ${CASES.map((c) => c.name).join(', ')})`)
  }
  return CASES.filter((c) => named.includes(c.name))
}

function stopSignal () {
  const raw = (process.env.RESTARTS_SIGNAL || 'KILL').toUpperCase().replace(/^SIG/, '')
  if (raw !== 'KILL' && raw !== 'TERM') throw new BenchError(`RESTARTS_SIGNAL="${process.env.RESTARTS_SIGNAL}" is neither KILL nor TERM`)
  return `SIG${raw}`
}

// ---------------------------------------------------------------- tools and machine

function requireTools () {
  const sbin = ['/usr/sbin', '/usr/local/sbin']
  const tools = {
    nginx: findExecutable('nginx', [...sbin, '/usr/local/nginx/sbin']),
    haproxy: findExecutable('haproxy', sbin),
    wrk: findExecutable('wrk', ['/usr/local/bin'])
  }
  const missing = Object.keys(tools).filter((k) => tools[k] === undefined)
  if (missing.length > 0) {
    throw new BenchError(`npm run bench:restarts needs ${missing.join(', ')} (looked on PATH, then in /usr/sbin, /usr/local/sbin, /usr/local/bin). ` +
      `On Debian/Ubuntu: apt-get install -y ${missing.join(' ')}  (.ci/run installs them in CI)`)
  }
  return tools
}

// ---------------------------------------------------------------- haproxy

// test/helpers/haproxy.ts's config: TCP mode, round robin, runtime API at admin level.
function haproxyConfig (adminSocket, port, backends) {
  return [
    'global',
    `  stats socket ${adminSocket} level admin`,
    '  maxconn 2000',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend be',
    'backend be',
    '  balance roundrobin',
    ...backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port}`),
    ''
  ].join('\n')
}

async function startHaproxy (bin, tmpDir, backends) {
  const dir = path.join(tmpDir, 'haproxy')
  fs.mkdirSync(dir)
  const adminSocket = path.join(dir, 'admin.sock')
  const configFile = path.join(dir, 'haproxy.cfg')
  let problem = ''
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    fs.writeFileSync(configFile, haproxyConfig(adminSocket, port, backends))
    const child = track(spawn(...pinned(LOAD_CPU, bin, ['-f', configFile, '-db']), { stdio: ['ignore', 'ignore', 'pipe'] }), 'haproxy')
    const stderr = tail(child.stderr)
    if (await untilAccepting(child, [port]) && await untilAccepting(child, [adminSocket])) {
      return { port, url: `http://127.0.0.1:${port}`, child, stderr, command: (cmd) => runtimeCommand(adminSocket, cmd) }
    }
    await stopChild(child)
    problem = stderr.text.trim() || 'no output'
    if (!/address already in use|cannot bind/i.test(problem)) break
  }
  throw new BenchError(`haproxy did not start:\n${problem}`)
}

/** One runtime API exchange: haproxy answers a non-interactive command, then closes the connection. */
function runtimeCommand (socketPath, cmd) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    let reply = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new BenchError(`haproxy runtime API: no reply to "${cmd}"`)) }, 5000)
    socket.setEncoding('utf8')
    socket.on('data', (chunk) => { reply += chunk })
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
    socket.once('close', () => { clearTimeout(timer); resolve(reply) })
    socket.once('connect', () => { socket.write(`${cmd}\n`) })
  })
}

// haproxy's per-server counters (`show stat`): sessions, connection errors,
// response errors (the server closed or reset a session), retries, redispatches;
// besides them `scur`, the sessions open now.
const HAPROXY_COUNTERS = ['stot', 'econ', 'eresp', 'wretr', 'wredis']

async function haproxyStats (haproxy) {
  const csv = await haproxy.command('show stat')
  const lines = csv.trim().split('\n')
  const head = lines[0].replace(/^#\s*/, '').split(',')
  const out = {}
  for (const line of lines.slice(1)) {
    const cells = line.split(',')
    const row = Object.fromEntries(head.map((h, i) => [h, cells[i]]))
    if (row.pxname !== 'be') continue
    out[row.svname] = Object.fromEntries([...HAPROXY_COUNTERS, 'scur'].map((k) => [k, Number(row[k] || 0)]))
  }
  return out
}

function haproxyDelta (before, after) {
  const out = {}
  for (const [server, counters] of Object.entries(after)) {
    out[server] = Object.fromEntries(HAPROXY_COUNTERS.map((k) => [k, counters[k] - (before[server]?.[k] ?? 0)]))
  }
  return out
}

// ---------------------------------------------------------------- gateway

function startGateway (spec, origin, tmpDir) {
  const log = path.join(tmpDir, `${spec.name}.log`)
  const fd = fs.openSync(log, 'w')
  let child
  try {
    child = track(spawn(...pinned(MEASURED_CPU, process.execPath, [GATEWAY, spec.name, origin]), {
      cwd: path.join(__dirname, '..'),
      stdio: ['ignore', fd, 'pipe', 'ipc']
    }), `gateway ${spec.name}`)
  } finally {
    fs.closeSync(fd)
  }
  const stderr = tail(child.stderr)
  return untilReady(child, stderr, `case ${spec.name}: gateway`).then((msg) =>
    ({ port: msg.ready, url: `http://127.0.0.1:${msg.ready}`, settings: msg.settings, child, stderr, log }))
}

const gatewayCounters = (gateway) => askStats(gateway.child, `gateway ${gateway.child.label}`)

const POOL_COUNTERS = ['requests', 'errors', 'retries', 'retryBudgetExhausted', 'queueFull', 'queueTimeouts', 'requestTimeouts', 'circuitRejections', 'clientAborts']

/** What the gateway did between two readings. */
function gatewayDelta (before, after, pool) {
  const delta = { connects: after.connects - before.connects, connectErrors: after.connectErrors - before.connectErrors, unfinished: after.unfinished - before.unfinished, statuses: {} }
  for (const [status, n] of Object.entries(after.statuses)) {
    const d = n - (before.statuses[status] ?? 0)
    if (d > 0) delta.statuses[status] = d
  }
  const a = after.stats?.[pool]
  const b = before.stats?.[pool]
  if (a && b) {
    delta.pool = {}
    for (const key of POOL_COUNTERS) delta.pool[key] = (a[key] ?? 0) - (b[key] ?? 0)
  }
  return delta
}

/**
 * The gateway's warn (and worse) log lines, by what failed: for the plugin its
 * own line per failed exchange (`code`, e.g. FST_HTTP_POOLS_UPSTREAM_RESET, and
 * the message with undici's cause); for reply-from its "response errored" line
 * (the undici error's code). Fastify's own line for the same 5xx is left out.
 */
function warnings (file, from, plugin) {
  let text = ''
  try { text = fs.readFileSync(file, 'utf8').slice(from) } catch { return { byCause: {}, samples: [] } }
  const byCause = {}
  const samples = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    let entry
    try { entry = JSON.parse(line) } catch { entry = { level: 50, msg: line } }
    if (entry.level < 40) continue
    let key
    if (entry.pool !== undefined && entry.code !== undefined) key = `${entry.code}: ${entry.msg}`
    else if (entry.msg === 'response errored') {
      // Under the plugin, reply-from's line repeats the plugin's own for the same exchange.
      if (plugin) continue
      key = `reply-from ${entry.err?.code ?? entry.err?.type}: ${entry.err?.message}`
    } else if (entry.res?.statusCode !== undefined || entry.err?.statusCode !== undefined) continue // Fastify's line for the same reply
    else key = `level ${entry.level}: ${entry.msg}`
    byCause[key] = (byCause[key] ?? 0) + 1
    if (samples.length < 5) samples.push(line.slice(0, 600))
  }
  return { byCause, samples }
}

/** One plain GET: the gateway must answer the upstream's body. */
function probe (url) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/`, { agent: false, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.once('timeout', () => req.destroy(new Error('timed out')))
    req.once('error', reject)
  })
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
  const p50 = /^\s+50(?:\.0+)?%\s+(\S+)/m.exec(out)
  const p99 = /^\s+99(?:\.0+)?%\s+(\S+)/m.exec(out)
  const total = /^\s+(\d+) requests in/m.exec(out)
  if (!rps || !p50 || !p99 || !total) throw new BenchError(`cannot read wrk output:\n${out}`)
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const socketErrors = sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : { connect: 0, read: 0, write: 0, timeout: 0 }
  return {
    rps: Number(rps[1]),
    p50: toMs(p50[1]),
    p99: toMs(p99[1]),
    requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors
  }
}

// wrk's --timeout: a response slower than this is counted as a timeout error and
// left out of the latency distribution. wrk's default (2 s) would turn a stall
// of a busy shared machine into an error; a restart's failures are not slow.
const WRK_TIMEOUT_S = 10

function wrk (bin, url, seconds, connections) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', `${WRK_TIMEOUT_S}s`, '--latency', `${url}/`]
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

// ---------------------------------------------------------------- one case

/** Unexpected exits (a gateway, haproxy or an nginx outside its restart) are errors of the run. */
function checkAlive (spec, gateway, upstreams, haproxy) {
  if (isShuttingDown()) return
  if (!alive(gateway.child)) throw new BenchError(`case ${spec.name}: the gateway exited during the run (${gateway.child.signalCode || `code ${gateway.child.exitCode}`})\n${gateway.stderr.text.trim()}`)
  if (!alive(haproxy.child)) throw new BenchError(`haproxy exited during the ${spec.name} run\n${haproxy.stderr.text.trim()}`)
  for (const n of upstreams) {
    if (!n.stopping && !alive(n.child)) throw new BenchError(`nginx ${n.name} exited during the ${spec.name} run\n${n.stderr.text.trim()}\n${n.readLog()}`)
  }
}

/** The plugin cases must run with the settings they claim. */
function checkSettings (spec, settings) {
  if (!spec.pool) return
  if (settings === null) throw new BenchError(`case ${spec.name}: the gateway has no pools`)
  const problems = []
  if (!(settings['retry.max-attempts'] >= 2)) problems.push(`retry.max-attempts ${settings['retry.max-attempts']}`)
  if (!settings['retry.methods'].includes('GET')) problems.push(`retry.methods ${settings['retry.methods']}`)
  if ((settings['connection.max-lifetime'] || undefined) !== spec.lifetime) problems.push(`connection.max-lifetime ${settings['connection.max-lifetime']}`)
  if (settings['retry.budget'] !== (spec.budget ?? 20)) problems.push(`retry.budget ${settings['retry.budget']}`)
  if (problems.length > 0) throw new BenchError(`case ${spec.name}: unexpected settings: ${problems.join(', ')}`)
}

async function runCase (spec, ctx) {
  const { tools, settings, upstreams, haproxy, tmpDir } = ctx
  const gateway = await startGateway(spec, haproxy.url, tmpDir)
  try {
    checkSettings(spec, gateway.settings)
    const res = await probe(gateway.url)
    if (res.status !== 200 || res.body !== BODY) throw new BenchError(`case ${spec.name}: GET ${gateway.url}/ answered ${res.status} ${JSON.stringify(res.body.slice(0, 300))}`)

    // Warm-up without restarts: JIT, connections to both backends. It must be clean.
    const warm = await wrk(tools.wrk, gateway.url, settings.warmupSeconds, settings.connections)
    const warmErrors = warm.non2xx + Object.values(warm.socketErrors).reduce((a, b) => a + b, 0)
    if (warmErrors > 0) throw new BenchError(`case ${spec.name}: ${warmErrors} client-visible errors during the warm-up, before any restart: the setup is broken (${JSON.stringify(warm)})`)
    checkAlive(spec, gateway, upstreams, haproxy)
    const logFrom = fs.statSync(gateway.log).size

    // Readings of the gateway's counters and haproxy's per-server state at the start,
    // just before each restart and at the end: window k is what happened from
    // restart k (0: the start) to the next reading.
    const reading = async (label) => {
      checkAlive(spec, gateway, upstreams, haproxy)
      const [g, ha] = await Promise.all([gatewayCounters(gateway), haproxyStats(haproxy)])
      return { label, g, ha }
    }
    const readings = [await reading('start')]
    const load = wrk(tools.wrk, gateway.url, settings.seconds, settings.connections)
    const restarts = []
    const start = performance.now()
    const run = { stop: false }
    const schedule = (async () => {
      // Restart k at k * interval seconds after the load started, alternating the upstreams.
      for (let k = 1; k * settings.interval < settings.seconds; k++) {
        const at = start + k * settings.interval * 1000
        while (!run.stop && performance.now() < at) await sleep(Math.min(50, at - performance.now()))
        if (run.stop) return
        const n = upstreams[(k - 1) % upstreams.length]
        const r = await reading(`${n.name}`)
        const t = (performance.now() - start) / 1000
        const downMs = await n.restart(settings.signal)
        // haproxy's sessions on each server just before the kill: the gateway connections the kill cuts.
        const sessions = Object.fromEntries(upstreams.map((u) => [u.name, r.ha[u.name]?.scur ?? 0]))
        restarts.push({ at: Number(t.toFixed(2)), upstream: n.name, downMs: Number(downMs.toFixed(1)), sessionsBefore: sessions })
        readings.push(r)
      }
    })()
    schedule.catch(() => { run.stop = true }) // awaited below; a failed restart is the run's error
    let result
    try {
      result = await load
    } finally {
      run.stop = true
      await schedule
    }
    // Exchanges still in flight when wrk stopped (retries included) end before the reading.
    await sleep(1000)
    checkAlive(spec, gateway, upstreams, haproxy)
    readings.push(await reading('end'))
    const before = readings[0].g
    const after = readings[readings.length - 1].g
    const windows = readings.slice(0, -1).map((r, i) => {
      const d = gatewayDelta(r.g, readings[i + 1].g, spec.pool)
      const failed = Object.entries(d.statuses).filter(([status]) => status !== '200').reduce((n, [, c]) => n + c, 0) + d.unfinished
      return { restart: i === 0 ? null : r.label, failedResponses: failed, ...(d.pool ? { retries: d.pool.retries, poolErrors: d.pool.errors, retryBudgetExhausted: d.pool.retryBudgetExhausted } : {}), connects: d.connects }
    })
    for (const [i, w] of windows.entries()) {
      if (i === 0) continue
      restarts[i - 1].window = w
    }
    const errors = result.non2xx + Object.values(result.socketErrors).reduce((a, b) => a + b, 0)
    return {
      what: spec.what,
      rps: Math.round(result.rps),
      p50Ms: round3(result.p50),
      p99Ms: round3(result.p99),
      requests: result.requests,
      clientErrors: errors,
      non2xx: result.non2xx,
      socketErrors: result.socketErrors,
      warmUpRps: Math.round(warm.rps),
      restarts,
      gateway: gatewayDelta(before, after, spec.pool),
      beforeFirstRestart: windows[0],
      haproxy: haproxyDelta(readings[0].ha, readings[readings.length - 1].ha),
      warnings: warnings(gateway.log, logFrom, spec.pool !== undefined)
    }
  } finally {
    await stopChild(gateway.child)
  }
}

// ---------------------------------------------------------------- output

const round3 = (n) => Math.round(n * 1000) / 1000

function table (summary) {
  const head = ['case', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'client errors', 'non-2xx', 'socket c/r/w/t', 'restarts', 'retries', 'pool errors', 'budget exhausted', 'new conns']
  const rows = Object.entries(summary).map(([name, s]) => {
    const e = s.socketErrors
    const p = s.gateway.pool
    return [
      name, String(s.rps), s.p50Ms.toFixed(2), s.p99Ms.toFixed(2), String(s.requests), String(s.clientErrors), String(s.non2xx),
      `${e.connect}/${e.read}/${e.write}/${e.timeout}`, String(s.restarts.length),
      p ? String(p.retries) : '-', p ? String(p.errors) : '-', p ? String(p.retryBudgetExhausted) : '-', String(s.gateway.connects)
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** One line per plugin case of the goal that ran: PASS with no client-visible error, and some for bare reply-from when it ran. */
function goals (summary) {
  const bare = summary[GOAL.bare]
  return GOAL.plugins.filter((name) => summary[name] !== undefined).map((name) => {
    const errors = summary[name].clientErrors
    const pass = errors === 0 && (bare === undefined || bare.clientErrors > 0)
    const text = `${name}: ${errors} client-visible errors (goal 0)` +
      (bare === undefined ? `; ${GOAL.bare} not run` : `; ${GOAL.bare}: ${bare.clientErrors} (goal > 0)`)
    return { case: name, result: pass ? 'PASS' : 'FAIL', text }
  })
}

// ---------------------------------------------------------------- main

async function main () {
  const settings = {
    seconds: positiveInt('RESTARTS_SECONDS', 60),
    interval: positiveInt('RESTARTS_INTERVAL', 5),
    connections: positiveInt('RESTARTS_CONNECTIONS', 32),
    warmupSeconds: positiveInt('RESTARTS_WARMUP', 3),
    signal: stopSignal(),
    threads: 1
  }
  const strict = process.env.RESTARTS_STRICT === '1'
  const specs = selectCases()
  const tools = requireTools()
  const info = machine(tools)
  console.log(`machine: ${info.nproc} CPUs, ${info.cpu}; node ${info.node}; nginx ${info.nginx}; haproxy ${info.haproxy}; ${info.wrk}; load ${info.loadavg.join(' ')}`)
  console.log(`load: wrk -t1 -c${settings.connections} -d${settings.seconds}s --latency per case after a ${settings.warmupSeconds} s warm-up; ` +
    `${settings.signal} and restart of one nginx every ${settings.interval} s, alternating; cases: ${specs.map((c) => c.name).join(', ')}`)

  const tmpDir = makeTmpDir('fastify-http-pools-restarts-')
  const upstreams = ['a', 'b'].map((name) => new Nginx(tools.nginx, { dir: path.join(tmpDir, name), name }))
  for (const n of upstreams) await n.start()
  const haproxy = await startHaproxy(tools.haproxy, tmpDir, upstreams.map((n) => ({ name: n.name, port: n.port })))
  console.log(`upstreams: nginx a on 127.0.0.1:${upstreams[0].port}, nginx b on 127.0.0.1:${upstreams[1].port}, behind haproxy on ${haproxy.url}`)

  const summary = {}
  for (const spec of specs) {
    console.log(`\n${spec.name}: ${spec.what}`)
    const s = await runCase(spec, { tools, settings, upstreams, haproxy, tmpDir })
    summary[spec.name] = s
    const e = s.socketErrors
    const p = s.gateway.pool
    console.log(`${spec.name}: ${s.rps} req/s  p50 ${s.p50Ms.toFixed(2)} ms  p99 ${s.p99Ms.toFixed(2)} ms  client errors ${s.clientErrors} (non-2xx ${s.non2xx}, socket connect ${e.connect} read ${e.read} write ${e.write} timeout ${e.timeout})` +
      `  gateway sent ${JSON.stringify(s.gateway.statuses)}${s.gateway.unfinished ? `, ${s.gateway.unfinished} cut` : ''}; upstream conns +${s.gateway.connects} (connect errors ${s.gateway.connectErrors})` +
      (p ? `; pool requests ${p.requests}, retries ${p.retries}, errors ${p.errors}, budget exhausted ${p.retryBudgetExhausted}` : ''))
    const w0 = s.beforeFirstRestart
    console.log(`  per window (from a restart to the next): failed responses, retries / budget exhausted / pool errors, new upstream conns; before the first restart: ${w0.failedResponses}` +
      (w0.retries === undefined ? '' : `, ${w0.retries}/${w0.retryBudgetExhausted}/${w0.poolErrors}`) + `, +${w0.connects}`)
    for (const r of s.restarts) {
      const w = r.window
      console.log(`    ${String(r.at).padStart(6)} s  ${r.upstream} (sessions a ${r.sessionsBefore.a}, b ${r.sessionsBefore.b}, down ${r.downMs} ms): failed ${w.failedResponses}` +
        (w.retries === undefined ? '' : `, ${w.retries}/${w.retryBudgetExhausted}/${w.poolErrors}`) + `, +${w.connects}`)
    }
    console.log(`  haproxy: ${Object.entries(s.haproxy).map(([sv, c]) => `${sv} ${HAPROXY_COUNTERS.map((k) => `${k} ${c[k]}`).join(' ')}`).join('; ')}`)
    for (const [cause, n] of Object.entries(s.warnings.byCause)) console.log(`  warn x${n}  ${cause}`)
  }

  console.log(`\n${table(summary)}`)
  const verdicts = goals(summary)
  if (verdicts.length > 0) console.log('')
  for (const v of verdicts) console.log(`${v.result}  issue 18  ${v.text}`)
  info.loadavgEnd = os.loadavg().map((n) => Number(n.toFixed(2)))
  const results = {
    date: new Date().toISOString(),
    machine: info,
    settings,
    setup: 'two nginx (return 200 \'hello world\') behind haproxy (mode tcp, balance roundrobin); gateway origin = haproxy',
    summary,
    goals: verdicts
  }
  fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
  console.log(`\nload average at the end: ${info.loadavgEnd.join(' ')}; written ${path.relative(process.cwd(), RESULTS)}`)
  if (strict && verdicts.some((v) => v.result === 'FAIL')) {
    console.error('bench:restarts: RESTARTS_STRICT=1 and the goal was not met')
    process.exitCode = 1
  }
}

runBench(main, 'bench:restarts')

'use strict'
// The processes of the bench scripts (bench/run.js, bench/restarts.js) and
// their servers: finding and pinning the tools, tracking every child until it
// exits, ports and readiness, and the way out, on success, failure or a
// signal, that leaves no process and no temporary directory behind.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const START_TIMEOUT = 15000

/** An expected failure of a run: reported as one line, without a stack. */
class BenchError extends Error {}

// ---------------------------------------------------------------- tools

function findExecutable (name, extraDirs) {
  const dirs = [...(process.env.PATH || '').split(path.delimiter), ...extraDirs]
  for (const dir of dirs) {
    if (!dir) continue
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {}
  }
  return undefined
}

function versionOf (file, args, pattern) {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 5000 })
  const out = `${r.stdout || ''}${r.stderr || ''}`
  const m = pattern.exec(out)
  return m ? m[1] : out.trim().split('\n')[0] || 'unknown'
}

// On 2 cores the process measured, the upstreams and wrk fight for CPU and the
// scheduler's choices swing a round by 2x. The process measured gets a core of
// its own; the upstreams and wrk share the other. BENCH_PIN=0 turns this off.
const TASKSET = process.env.BENCH_PIN === '0' || os.cpus().length < 2 ? null : findExecutable('taskset', ['/usr/bin', '/bin'])
const MEASURED_CPU = '1'
const LOAD_CPU = '0'

/** `bin args` pinned to `cpu` when pinning is on: the arguments of spawn(). */
function pinned (cpu, bin, args) {
  return TASKSET ? [TASKSET, ['-c', cpu, bin, ...args]] : [bin, args]
}

// ---------------------------------------------------------------- children

const children = new Set()
let tmpDir
let shuttingDown = false // set on success, failure or a signal: children exiting is expected then
let interrupted = false

function track (child, label) {
  child.label = label
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

const alive = (child) => child.exitCode === null && child.signalCode === null

const isShuttingDown = () => shuttingDown

async function stopChild (child, signal = 'SIGTERM') {
  if (!alive(child)) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  const timer = setTimeout(() => { if (alive(child)) child.kill('SIGKILL') }, 3000)
  await exited
  clearTimeout(timer)
}

/** The run's temporary directory, removed on the way out whatever happens. */
function makeTmpDir (prefix) {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  return tmpDir
}

function removeTmp () {
  if (tmpDir === undefined) return
  try { fs.rmSync(tmpDir, { recursive: true, force: true }) } catch {}
  tmpDir = undefined
}

let cleaning
async function cleanup () {
  cleaning ??= (async () => {
    await Promise.all([...children].map((c) => stopChild(c)))
    removeTmp()
  })()
  return cleaning
}

/**
 * Runs a bench script's `main`, then stops its children and removes its
 * temporary directory: after success, a failure (printed after `prefix`, exit
 * code 1), a signal (exit 128 + its number) or, as a last resort, any exit.
 */
function runBench (main, prefix) {
  process.on('exit', () => {
    for (const child of children) if (alive(child)) child.kill('SIGKILL')
    removeTmp()
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      shuttingDown = true
      interrupted = true
      console.error(`\n${signal}: stopping the benchmark`)
      cleanup().finally(() => process.exit(128 + os.constants.signals[signal]))
    })
  }
  main().then(
    async () => { shuttingDown = true; await cleanup() },
    async (err) => {
      if (interrupted) return // the signal handler cleans up and exits
      shuttingDown = true
      console.error(err instanceof BenchError ? `${prefix}: ${err.message}` : err)
      await cleanup()
      process.exitCode = 1
    }
  )
}

/** Keeps the last `limit` characters of a stream, for error messages. */
function tail (stream, limit = 4000) {
  const state = { text: '' }
  stream.setEncoding('utf8')
  stream.on('data', (chunk) => { state.text = (state.text + chunk).slice(-limit) })
  return state
}

// ---------------------------------------------------------------- ports

// Free when picked, but another process may take it before ours binds it:
// callers start again on a new one when theirs was taken.
function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** `target`: a port on 127.0.0.1 or a unix socket path. */
function canConnect (target) {
  return new Promise((resolve) => {
    const socket = typeof target === 'number' ? net.connect({ port: target, host: '127.0.0.1' }) : net.connect(target)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until every one of `targets` (ports or unix socket paths) accepts, while `child` lives; false when they did not in time. */
async function untilAccepting (child, targets, timeout = START_TIMEOUT, step = 10) {
  const deadline = Date.now() + timeout
  while (alive(child) && Date.now() < deadline) {
    let all = true
    for (const target of targets) {
      if (!await canConnect(target)) { all = false; break }
    }
    if (all) return true
    await sleep(step)
  }
  return false
}

// ---------------------------------------------------------------- the servers' IPC channel

/**
 * The first message of a server started with an IPC channel: { ready: port, ... }.
 * Resolves with it; a server that exits, says something else or stays silent
 * for START_TIMEOUT is stopped, and the error (after `who`) ends with its stderr.
 */
function untilReady (child, stderr, who) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`did not report ready within ${START_TIMEOUT / 1000} s`), START_TIMEOUT)
    function fail (why) {
      clearTimeout(timer)
      child.off('exit', onExit)
      stopChild(child)
      reject(new BenchError(`${who} ${why}\n${stderr.text.trim()}`))
    }
    function onExit (code, signal) { fail(`exited (${signal || `code ${code}`}) before listening`) }
    child.once('exit', onExit)
    child.once('message', (msg) => {
      clearTimeout(timer)
      child.off('exit', onExit)
      if (!msg || typeof msg.ready !== 'number') return fail(`sent ${JSON.stringify(msg)} instead of its port`)
      resolve(msg)
    })
  })
}

/** A server's answer to 'stats' (its counters, with `connects` at least); `who` names it in errors. */
function askStats (child, who) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new BenchError(`${who}: no answer to "stats"`)), 5000)
    child.once('message', (msg) => {
      clearTimeout(timer)
      if (!msg || typeof msg.connects !== 'number') return reject(new BenchError(`${who}: sent ${JSON.stringify(msg)} instead of its stats`))
      resolve(msg)
    })
    child.send('stats')
  })
}

// ---------------------------------------------------------------- the servers' side

/**
 * A bench server's way out: close `app` on SIGTERM, SIGINT or its parent's IPC
 * channel closing (the parent is gone), and exit within 1 s even when close()
 * hangs, so that the harness never has to kill it.
 */
function exitOnStop (app) {
  const stop = () => {
    setTimeout(() => process.exit(0), 1000).unref()
    app.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  if (process.send) process.once('disconnect', stop)
}

/** What the machine is, for a results file: the tools' versions (haproxy's only when it was used). */
function machine (tools) {
  let cpu = os.cpus()[0]?.model
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) cpu = m[1].trim()
  } catch {}
  return {
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    cpu: cpu || 'unknown',
    node: process.version,
    nginx: versionOf(tools.nginx, ['-v'], /nginx version: (\S+)/),
    ...(tools.haproxy ? { haproxy: versionOf(tools.haproxy, ['-v'], /HAProxy version (\S+)/) } : {}),
    wrk: versionOf(tools.wrk, ['-v'], /^(wrk \S+)/m),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg: os.loadavg().map((n) => Number(n.toFixed(2)))
  }
}

module.exports = {
  machine,
  BenchError,
  START_TIMEOUT,
  findExecutable,
  versionOf,
  MEASURED_CPU,
  LOAD_CPU,
  pinned,
  track,
  alive,
  isShuttingDown,
  stopChild,
  makeTmpDir,
  runBench,
  tail,
  freePort,
  canConnect,
  sleep,
  untilAccepting,
  untilReady,
  askStats,
  exitOnStop
}

'use strict'
// The upstream of the bench scripts (bench/run.js, bench/restarts.js): nginx
// answering every request with a fixed 200 body, no disk I/O and keep-alive
// for the whole run, so that what is measured is the gateway in front of it.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { BenchError, START_TIMEOUT, LOAD_CPU, pinned, track, isShuttingDown, stopChild, tail, freePort, untilAccepting } = require('./processes.js')

const BODY = 'hello world'

// The sized bodies of the cases that forward more than a few bytes (their
// `path`): JSON files in nginx's prefix, read once into the page cache.
const SIZED = { '/16k': 16 * 1024, '/1m': 1024 * 1024 }

/** The body nginx serves at `path` of SIZED: a JSON object of exactly that many bytes. */
function bodyOf (path) {
  const size = SIZED[path]
  if (size === undefined) throw new BenchError(`nginx serves no sized body at ${path} (sized: ${Object.keys(SIZED).join(', ')})`)
  return `{"data":"${'x'.repeat(size - 11)}"}`
}

/** The locations that serve SIZED, each from its file written into `dir`. */
function sizedLocations (dir) {
  return Object.keys(SIZED).map((at) => {
    const file = path.join(dir, `body${at.slice(1)}.json`)
    fs.writeFileSync(file, bodyOf(at))
    return `        location = ${at} {
            default_type application/json;
            alias ${file};
        }
`
  }).join('')
}

function nginxConfig (dir, port, workerConnections, tls) {
  const p = (name) => path.join(dir, name)
  const tlsServer = tls === undefined
    ? ''
    : `
    server {
        listen 127.0.0.1:${tls.port} ssl;
        ssl_certificate ${tls.cert};
        ssl_certificate_key ${tls.key};
        default_type text/plain;
        location / {
            return 200 '${BODY}';
        }
    }
`
  return `# written by bench/nginx.js
daemon off;
master_process off;
worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} warn;

events {
    worker_connections ${workerConnections};
}

http {
    access_log off;
    client_body_temp_path ${p('client_body')};
    proxy_temp_path ${p('proxy')};
    fastcgi_temp_path ${p('fastcgi')};
    uwsgi_temp_path ${p('uwsgi')};
    scgi_temp_path ${p('scgi')};
    keepalive_requests 1000000;
    keepalive_timeout 65;

    server {
        listen 127.0.0.1:${port};
        default_type text/plain;
        location / {
            return 200 '${BODY}';
        }
${sizedLocations(dir)}    }
${tlsServer}}
`
}

/**
 * One nginx: its own prefix `dir` (created if missing), config and port, and
 * with `certificate` ({ cert, key }) a second port with TLS. `name` tells two
 * of them apart in labels and errors. `pollMs`: how often `start()` looks
 * whether nginx accepts yet.
 */
class Nginx {
  constructor (bin, { dir, name, workerConnections = 4096, certificate, pollMs = 10 }) {
    this.bin = bin
    this.name = name
    this.label = name === undefined ? 'nginx' : `nginx ${name}`
    this.dir = dir
    this.conf = path.join(dir, 'nginx.conf')
    this.errorLog = path.join(dir, 'error.log')
    this.workerConnections = workerConnections
    this.certificate = certificate
    this.pollMs = pollMs
    this.child = undefined
    this.stopping = false
    fs.mkdirSync(dir, { recursive: true })
  }

  get url () { return `http://127.0.0.1:${this.port}` }
  get httpsUrl () { return this.tls && `https://127.0.0.1:${this.tls.port}` }

  readLog () {
    try { return fs.readFileSync(this.errorLog, 'utf8').trim().split('\n').slice(-10).join('\n') } catch { return '' }
  }

  spawn () {
    // -e: the error log before the config is read (otherwise /var/log/nginx/error.log).
    const child = track(spawn(...pinned(LOAD_CPU, this.bin, ['-p', this.dir + path.sep, '-c', this.conf, '-e', this.errorLog]), { stdio: ['ignore', 'ignore', 'pipe'] }), this.label)
    this.stderr = tail(child.stderr)
    this.child = child
    return child
  }

  /** First start: free ports (another try on new ones if one was taken in between). */
  async start () {
    let problem = ''
    for (let attempt = 1; attempt <= 3; attempt++) {
      this.port = await freePort()
      this.tls = this.certificate === undefined ? undefined : { ...this.certificate, port: await freePort() }
      fs.writeFileSync(this.conf, nginxConfig(this.dir, this.port, this.workerConnections, this.tls))
      const child = this.spawn()
      if (await untilAccepting(child, this.tls ? [this.port, this.tls.port] : [this.port], START_TIMEOUT, this.pollMs)) return
      await stopChild(child)
      problem = [this.stderr.text.trim(), this.readLog()].filter(Boolean).join('\n') || 'no output'
      if (!/in use/i.test(problem)) break
    }
    throw new BenchError(`${this.label} did not start:\n${problem}`)
  }

  /**
   * The restart: `signal` (SIGKILL: a crash, nothing drains) to the process,
   * wait until it is gone, start it again at once on the same port. Resolves
   * with the ms from the signal to the new process accepting.
   */
  async restart (signal) {
    const t0 = performance.now()
    this.stopping = true
    await stopChild(this.child, signal)
    this.stopping = false
    if (isShuttingDown()) throw new BenchError('stopped')
    const child = this.spawn()
    if (!await untilAccepting(child, [this.port], START_TIMEOUT, 2)) {
      throw new BenchError(`${this.label} did not start again on port ${this.port}:\n${[this.stderr.text.trim(), this.readLog()].filter(Boolean).join('\n')}`)
    }
    return performance.now() - t0
  }
}

module.exports = { BODY, bodyOf, Nginx }

// A real forward proxy for the end-to-end proxy tests: tinyproxy (the Debian
// package; CI installs it) on 127.0.0.1, with its config, log and pid files in
// a temporary directory, stopped at teardown.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** What the helper needs from tap's `t`. */
export interface Teardown { teardown: (fn: () => unknown) => void }

export interface TinyproxyOptions {
  /** `BasicAuth user pass`: the proxy answers 407 to requests without these credentials. */
  basicAuth?: { user: string, pass: string }
}

export interface Tinyproxy {
  port: number
  /** `127.0.0.1:PORT` */
  address: string
  /** The proxy's log so far (LogLevel Info): handy in assertion messages. */
  log: () => string
  /** Stops the proxy now (SIGKILL) and resolves once the process is gone; teardown then has nothing left to do. */
  kill: () => Promise<void>
}

/** How long the proxy may take to accept connections after it was spawned. */
const START_DEADLINE_MS = 10_000
const ATTEMPTS = 3

/** A port that was free a moment ago (bound on 127.0.0.1, then released): tinyproxy cannot be told to pick one. */
async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

function configText (dir: string, port: number, options: TinyproxyOptions): string {
  return [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 30',
    `LogFile "${join(dir, 'tinyproxy.log')}"`,
    `PidFile "${join(dir, 'tinyproxy.pid')}"`,
    'LogLevel Info',
    'MaxClients 100',
    'Allow 127.0.0.1',
    // No ConnectPort line: CONNECT is allowed to any port (the upstreams listen on random ones).
    ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.pass}`] : []),
    ''
  ].join('\n')
}

/** Resolves once the process is gone (or never started: a spawn error need not be followed by 'exit'). */
async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  await once(child, 'exit')
}

/**
 * Starts tinyproxy in the foreground (`-d`) and resolves once its port accepts
 * connections. The port is found by binding port 0 and releasing it; should
 * another process take it in between, tinyproxy exits and a new port is tried
 * (three attempts in all).
 */
export async function startTinyproxy (t: Teardown, options: TinyproxyOptions = {}): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'fhp-tinyproxy-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const logFile = join(dir, 'tinyproxy.log')
  const log = (): string => { try { return readFileSync(logFile, 'utf8') } catch { return '' } }
  const failures: string[] = []

  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const port = await freePort()
    const configFile = join(dir, 'tinyproxy.conf')
    writeFileSync(configFile, configText(dir, port, options))
    const child = spawn('tinyproxy', ['-d', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (c: Buffer) => { output += String(c) })
    child.stderr!.on('data', (c: Buffer) => { output += String(c) })
    let spawnError: Error | undefined
    child.once('error', (err) => { spawnError = err })
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited(child)
    }
    t.teardown(stop)

    const alive = (): boolean => spawnError === undefined && child.exitCode === null && child.signalCode === null
    const deadline = Date.now() + START_DEADLINE_MS
    let up = false
    while (!up && Date.now() < deadline && alive()) {
      up = await accepts(port)
      // A refused loopback connect fails at once: poll every 20 ms until the deadline.
      if (!up) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (spawnError !== undefined) throw new Error(`cannot run tinyproxy (is it installed? apt-get install tinyproxy): ${spawnError.message}`)
    if (up && alive()) {
      return { port, address: `127.0.0.1:${port}`, log, kill: stop }
    }
    await stop()
    failures.push(`attempt ${attempt} on port ${port}: ${up ? 'exited' : 'did not accept connections in time'}; output: ${output.trim()}; log: ${log().trim()}`)
  }
  throw new Error(`tinyproxy did not start:\n${failures.join('\n')}`)
}

// A real load balancer for the connection rotation tests: haproxy (the Debian
// package; CI installs it) in TCP mode, round robin over loopback backends, on
// 127.0.0.1. Its config and runtime API socket live in a temporary directory;
// it runs in the foreground (-db) and is killed at teardown.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

/** What the helper needs from tap's `t`. */
export interface Teardown { teardown: (fn: () => unknown) => void }

export interface Backend {
  /** Server name in backend `be`, as the runtime API names it (`be/NAME`). */
  name: string
  port: number
  /** Starts in maintenance (`disabled`): no connection goes to it until `enable server be/NAME`. */
  disabled?: boolean
}

export interface Haproxy {
  port: number
  /** `http://127.0.0.1:PORT` of the frontend. */
  origin: string
  /** Sends one command to the runtime API (admin level) and resolves with the reply. */
  command: (cmd: string) => Promise<string>
  /** Stops haproxy now (SIGKILL) and resolves once the process is gone. */
  kill: () => Promise<void>
}

/** How long haproxy may take to accept connections after it was spawned. */
const START_DEADLINE_MS = 10_000
const COMMAND_TIMEOUT_MS = 5_000
const ATTEMPTS = 3

/** haproxy on PATH, else in an sbin folder (Debian puts it in /usr/sbin, which a non-root PATH may lack). */
function haproxyExecutable (): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin']
  for (const dir of dirs) {
    try {
      accessSync(join(dir, 'haproxy'), constants.X_OK)
      return join(dir, 'haproxy')
    } catch {}
  }
  return 'haproxy'
}

/** A port that was free a moment ago (bound on 127.0.0.1, then released): haproxy cannot be told to pick one. */
async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Whether something accepts connections at `target` (a TCP port on 127.0.0.1, or a unix socket path). */
async function accepts (target: number | string): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = typeof target === 'number' ? connect(target, '127.0.0.1') : connect(target)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

function configText (adminSocket: string, port: number, backends: Backend[]): string {
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
    ...backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port}${b.disabled === true ? ' disabled' : ''}`),
    ''
  ].join('\n')
}

/** One runtime API exchange: haproxy answers a non-interactive command, then closes the connection. */
async function runtimeCommand (path: string, cmd: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect(path)
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`haproxy runtime API: no reply to "${cmd}" within ${COMMAND_TIMEOUT_MS} ms`))
    }, COMMAND_TIMEOUT_MS)
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { reply += chunk })
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
    socket.once('close', () => { clearTimeout(timer); resolve(reply) })
    socket.once('connect', () => { socket.write(`${cmd}\n`) })
  })
}

async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  await once(child, 'exit')
}

/**
 * Starts haproxy in front of `backends` and resolves once its frontend and its
 * runtime API accept connections. The frontend port is found by binding port 0
 * and releasing it; should another process take it in between, haproxy exits
 * and a new port is tried (three attempts in all).
 */
export async function startHaproxy (t: Teardown, backends: Backend[]): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'fhp-haproxy-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const adminSocket = join(dir, 'admin.sock')
  const failures: string[] = []

  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const port = await freePort()
    const configFile = join(dir, 'haproxy.cfg')
    writeFileSync(configFile, configText(adminSocket, port, backends))
    const child = spawn(haproxyExecutable(), ['-f', configFile, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] })
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
      up = await accepts(port) && await accepts(adminSocket)
      // A refused loopback connect fails at once: poll every 20 ms until the deadline.
      if (!up) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (spawnError !== undefined) throw new Error(`cannot run haproxy (is it installed? apt-get install haproxy): ${spawnError.message}`)
    if (up && alive()) {
      return { port, origin: `http://127.0.0.1:${port}`, command: async (cmd) => await runtimeCommand(adminSocket, cmd), kill: stop }
    }
    await stop()
    failures.push(`attempt ${attempt} on port ${port}: ${up ? 'exited' : 'did not accept connections in time'}; output: ${output.trim()}`)
  }
  throw new Error(`haproxy did not start:\n${failures.join('\n')}`)
}

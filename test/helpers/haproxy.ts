// A real load balancer for the connection rotation tests: haproxy (the Debian
// package; CI installs it) in TCP mode, round robin over loopback backends, on
// 127.0.0.1. Its config and runtime API socket live in a temporary directory;
// it runs in the foreground (-db) and is killed at teardown.
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { startDaemon } from './daemon.js'
import { accepts } from './net.js'
import type { Teardown } from './tap.js'

export type { Teardown } from './tap.js'

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

const COMMAND_TIMEOUT_MS = 5_000

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
  const configFile = join(dir, 'haproxy.cfg')
  const { port, kill } = await startDaemon(t, {
    name: 'haproxy',
    executable: haproxyExecutable(),
    prepare: (port) => {
      writeFileSync(configFile, configText(adminSocket, port, backends))
      return ['-f', configFile, '-db']
    },
    ready: async (port) => await accepts(port) && await accepts(adminSocket)
  })
  return { port, origin: `http://127.0.0.1:${port}`, command: async (cmd) => await runtimeCommand(adminSocket, cmd), kill }
}

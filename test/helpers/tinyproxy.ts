// A real forward proxy for the end-to-end proxy tests: tinyproxy (the Debian
// package; CI installs it) on 127.0.0.1 (or ::1), with its config, log and pid files in
// a temporary directory, stopped at teardown.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDaemon } from './daemon.js'
import { accepts } from './net.js'
import type { Teardown } from './tap.js'

export type { Teardown } from './tap.js'

export interface TinyproxyOptions {
  /** `BasicAuth user pass`: the proxy answers 407 to requests without these credentials. */
  basicAuth?: { user: string, pass: string }
  /** The loopback address it listens on and serves: 127.0.0.1 by default. */
  host?: '127.0.0.1' | '::1'
}

export interface Tinyproxy {
  port: number
  /** `127.0.0.1:PORT`, or `[::1]:PORT` */
  address: string
  /** The proxy's log so far (LogLevel Info): handy in assertion messages. */
  log: () => string
  /** Stops the proxy now (SIGKILL) and resolves once the process is gone; teardown then has nothing left to do. */
  kill: () => Promise<void>
}

function configText (dir: string, port: number, host: string, options: TinyproxyOptions): string {
  return [
    `Port ${port}`,
    `Listen ${host}`,
    'Timeout 30',
    `LogFile "${join(dir, 'tinyproxy.log')}"`,
    `PidFile "${join(dir, 'tinyproxy.pid')}"`,
    'LogLevel Info',
    'MaxClients 100',
    `Allow ${host}`,
    // No ConnectPort line: CONNECT is allowed to any port (the upstreams listen on random ones).
    ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.pass}`] : []),
    ''
  ].join('\n')
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
  const configFile = join(dir, 'tinyproxy.conf')
  const host = options.host ?? '127.0.0.1'
  const { port, kill } = await startDaemon(t, {
    name: 'tinyproxy',
    prepare: (port) => {
      writeFileSync(configFile, configText(dir, port, host, options))
      return ['-d', '-c', configFile]
    },
    ready: async (port) => await accepts(port, host),
    diagnostics: () => `log: ${log().trim()}`
  })
  return { port, address: `${host.includes(':') ? `[${host}]` : host}:${port}`, log, kill }
}

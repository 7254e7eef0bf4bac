// Real helper programs for the tests (haproxy, tinyproxy: Debian packages that
// CI installs), run in the foreground on a loopback port and killed at
// teardown.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { freePort } from './net.js'
import type { Teardown } from './tap.js'

/** How long a program may take to accept connections after it was spawned. */
const START_DEADLINE_MS = 10_000
const ATTEMPTS = 3

export interface DaemonSpec {
  /** The program's name (and its Debian package's), for messages. */
  name: string
  /** The program to spawn (default: `name`, looked up on PATH). */
  executable?: string
  /** Writes whatever config the program needs to listen on `port`; returns its arguments. */
  prepare: (port: number) => string[]
  /** Whether the program, told to listen on `port`, is ready (accepts connections). */
  ready: (port: number) => Promise<boolean>
  /** Extra text for the failure message of an attempt (e.g. the program's log). */
  diagnostics?: () => string
}

export interface Daemon {
  port: number
  /** Stops the program now (SIGKILL) and resolves once the process is gone; teardown then has nothing left to do. */
  kill: () => Promise<void>
}

/** Resolves once the process is gone (or never started: a spawn error need not be followed by 'exit'). */
async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  await once(child, 'exit')
}

/**
 * Spawns the program and resolves once `ready(port)` holds. The port is found
 * by binding port 0 and releasing it (the program cannot be told to pick one);
 * should another process take it in between, the program exits and a new port
 * is tried (three attempts in all).
 */
export async function startDaemon (t: Teardown, spec: DaemonSpec): Promise<Daemon> {
  const failures: string[] = []
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const port = await freePort()
    const child = spawn(spec.executable ?? spec.name, spec.prepare(port), { stdio: ['ignore', 'pipe', 'pipe'] })
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
      up = await spec.ready(port)
      // A refused loopback connect fails at once: poll every 20 ms until the deadline.
      if (!up) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (spawnError !== undefined) throw new Error(`cannot run ${spec.name} (is it installed? apt-get install ${spec.name}): ${spawnError.message}`)
    if (up && alive()) return { port, kill: stop }
    await stop()
    const extra = spec.diagnostics === undefined ? '' : `; ${spec.diagnostics()}`
    failures.push(`attempt ${attempt} on port ${port}: ${up ? 'exited' : 'did not accept connections in time'}; output: ${output.trim()}${extra}`)
  }
  throw new Error(`${spec.name} did not start:\n${failures.join('\n')}`)
}

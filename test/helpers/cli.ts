// The built command (dist/lib/cli/main.js), and other Node programs, run as a
// user runs them: child processes without tap's loaders. A server is found by
// its ready log line (`serve` on port 0: "gateway ready at URL") and stopped
// (SIGTERM, then SIGKILL) at teardown. npm test builds dist/ first.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { LogLine } from './logs.js'
import { ROOT, run, userEnv, type Ran } from './package.js'
import type { Teardown } from './tap.js'
import { BOUND_MS } from './wait.js'

export const CLI = join(ROOT, 'dist', 'lib', 'cli', 'main.js')
export const cliBuilt = existsSync(CLI)

// Node's start on a busy machine included: a command still running after this is hanging.
const EXIT_BOUND_MS = 2 * BOUND_MS

/** `fastify-http-pools ARGS` to its end, bounded: a command that hangs is killed (code null) and fails the test. */
export async function cli (...args: string[]): Promise<Ran> {
  return await run(process.execPath, [CLI, ...args], ROOT, EXIT_BOUND_MS)
}

export interface Started {
  /** The URL of the ready line's first group. */
  url: string
  child: ChildProcess
  /** Every JSON log line so far. */
  lines: LogLine[]
  stderr: () => string
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
}

/**
 * Starts `node ARGS` and resolves once it logs (pino JSON on stdout) a message
 * matching `ready`, whose first group is the URL; rejects with its output if
 * it exits first. Stopped at teardown: SIGTERM, then SIGKILL.
 */
export async function startNode (t: Teardown, args: string[], options: { cwd: string, env: NodeJS.ProcessEnv, ready: RegExp }): Promise<Started> {
  const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), BOUND_MS)
    await exited
    clearTimeout(killer)
  })
  const lines: LogLine[] = []
  let stderr = ''
  let buffered = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += String(c) })
  const what = args.join(' ')
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} was not ready after ${EXIT_BOUND_MS} ms:\n${stderr}`)), EXIT_BOUND_MS)
    child.stdout!.on('data', (c: Buffer) => {
      buffered += String(c)
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = JSON.parse(buffered.slice(0, nl)) as LogLine
        buffered = buffered.slice(nl + 1)
        lines.push(line)
        const ready = options.ready.exec(line.msg ?? '')
        if (ready) { clearTimeout(timer); resolve(ready[1]!) }
      }
    })
    exited.then((code) => { clearTimeout(timer); reject(new Error(`${what} exited ${code} before it was ready:\n${stderr}`)) }, reject)
  })
  return { url, child, lines, stderr: () => stderr, exited }
}

/** Starts `serve --port 0 ARGS` and resolves once it logs that it is ready. */
export async function startServe (t: Teardown, ...args: string[]): Promise<Started> {
  return await startNode(t, [CLI, 'serve', '--port', '0', ...args], { cwd: ROOT, env: userEnv(), ready: /^gateway ready at (\S+)$/ })
}

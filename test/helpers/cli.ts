// The built command (dist/lib/cli/main.js) run as a user runs it: a child
// process without tap's loaders. `serve` is started on port 0 and found by its
// "gateway ready at URL" log line; it is stopped (SIGTERM, then SIGKILL) at
// teardown. npm test builds dist/ first.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { LogLine } from './logs.js'
import { ROOT, run, type Ran } from './package.js'
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

export interface Served {
  url: string
  child: ChildProcess
  /** Every JSON log line so far. */
  lines: LogLine[]
  stderr: () => string
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
}

/** Starts `serve --port 0 ARGS` and resolves once it logs that it is ready; rejects with its output if it exits first. */
export async function startServe (t: Teardown, ...args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
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
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve ${args.join(' ')} was not ready after ${EXIT_BOUND_MS} ms:\n${stderr}`)), EXIT_BOUND_MS)
    child.stdout!.on('data', (c: Buffer) => {
      buffered += String(c)
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = JSON.parse(buffered.slice(0, nl)) as LogLine
        buffered = buffered.slice(nl + 1)
        lines.push(line)
        const ready = /^gateway ready at (\S+)$/.exec(line.msg ?? '')
        if (ready) { clearTimeout(timer); resolve(ready[1]!) }
      }
    })
    exited.then((code) => { clearTimeout(timer); reject(new Error(`serve ${args.join(' ')} exited ${code} before it was ready:\n${stderr}`)) }, reject)
  })
  return { url, child, lines, stderr: () => stderr, exited }
}

// The package as a user gets it: packed with npm, installed into a project of
// its own in a temporary folder, commands run there as a user runs them.
// Installs take what they can from npm's cache (--prefer-offline), so only a
// package the cache lacks comes from the registry. Needs dist/ (npm test
// builds it first).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import type { Teardown } from './tap.js'

export const ROOT = resolve(__dirname, '..', '..')
export const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
export const built = existsSync(join(ROOT, 'dist', 'index.js')) && existsSync(join(ROOT, 'dist', 'index.d.mts'))

/**
 * The environment of a user's shell: this Node first on PATH (npm runs on it,
 * and so does whatever npm starts), none of tap's loaders, and none of the
 * `npm_*` variables of the `npm test` around us, which would point a nested npm
 * at this project.
 */
export function userEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== 'NODE_OPTIONS' && !key.startsWith('TAP')) env[key] = value
  }
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter)
  return { ...env, ...extra }
}

export interface Ran { code: number | null, stdout: string, stderr: string }

/** Runs `command args` in `cwd` to its end (bounded by `timeoutMs`), output captured. */
export async function run (command: string, args: string[], cwd: string, timeoutMs = 240_000, env = userEnv()): Promise<Ran> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += String(c) })
    child.stderr.on('data', (c: Buffer) => { stderr += String(c) })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** `run`, failing with the command's output unless it exits 0. */
export async function runOk (command: string, args: string[], cwd: string, timeoutMs?: number): Promise<Ran> {
  const r = await run(command, args, cwd, timeoutMs)
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
  return r
}

/** npm install in `cwd`: from the cache where it can, no audit, no lock file written. */
export async function npmInstall (cwd: string, args: string[] = []): Promise<Ran> {
  return await runOk('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error', ...args], cwd)
}

/** A temporary folder, removed at teardown. */
export function tempDir (t: Teardown, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** `npm pack` of this project into `dir` (dist/ as built; no prepare script). Returns the tarball's path. */
export async function pack (dir: string): Promise<string> {
  const r = await runOk('npm', ['pack', '--ignore-scripts', '--json', '--loglevel=error', '--pack-destination', dir], ROOT)
  const [{ filename }] = JSON.parse(r.stdout) as Array<{ filename: string }>
  return join(dir, filename)
}

/** The files `npm pack` would publish, as paths relative to the package root. */
export async function packedFiles (): Promise<string[]> {
  const r = await runOk('npm', ['pack', '--dry-run', '--ignore-scripts', '--json', '--loglevel=error'], ROOT)
  const [{ files }] = JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>
  return files.map((f) => f.path).sort()
}

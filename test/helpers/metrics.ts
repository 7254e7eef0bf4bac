// Reading metrics as Prometheus does: the exposition text parsed into samples,
// and checked by promtool (Debian package `prometheus`, installed by .ci/run).
// A missing promtool fails the test that needs it, saying so: never a skip.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { BOUND_MS } from './wait.js'

export const PROMTOOL = '/usr/bin/promtool'
export const PROMETHEUS = '/usr/bin/prometheus'

/** Fails with what to install when a Prometheus tool is missing. */
export function need (tool: string): string {
  if (!existsSync(tool)) throw new Error(`${tool} is missing: install the Debian package "prometheus" (apt-get install prometheus; .ci/run does)`)
  return tool
}

export interface Sample { name: string, labels: Record<string, string>, value: number }

/** The samples of an exposition in the text format. */
export function samples (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => c === 'n' ? '\n' : c)
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

/** The value of the one sample `name` whose labels include `labels`; undefined when there is none. */
export function value (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = series(text, name, labels)
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return found[0]?.value
}

/** The samples `name` whose labels include `labels`. */
export function series (text: string, name: string, labels: Record<string, string> = {}): Sample[] {
  return samples(text).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
}

/** `promtool check metrics` on `text`: its exit code and what it said (problems are printed, one a line). */
export async function promtoolCheck (text: string): Promise<{ code: number | null, output: string }> {
  const child = spawn(need(PROMTOOL), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: BOUND_MS, killSignal: 'SIGKILL' })
  let output = ''
  child.stdout.on('data', (c: Buffer) => { output += String(c) })
  child.stderr.on('data', (c: Buffer) => { output += String(c) })
  child.stdin.end(text)
  return await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, output }))
  })
}

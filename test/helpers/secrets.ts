// Everywhere a config's secrets could show (SPEC "Nothing leaks"): config
// errors, `check` output, reload errors, log lines, stats() and the printed
// forms (util.inspect, JSON, a log line's object) of the registry, its
// clients, their dispatchers and settings. A probe is one gateway whose
// config each texts() call reloads, so many configs are probed quickly.
import Fastify, { type FastifyInstance } from 'fastify'
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { inspect } from 'node:util'
import plugin from '../../index.js'
import { check } from '../../lib/cli/check.js'
import { logCapture } from './logs.js'
import type { Teardown } from './tap.js'
import { wrap } from './xml.js'

/**
 * Stores a probed config may name, by their names in test/fixtures (passwords
 * as its READMEs say; the `secret-` ones have recognisable passwords).
 */
export const PROBE_STORES = ['tls/client.jks', 'tls/client.p12', 'tls/client-combined.pem', 'tls/truststore.pem', 'config/secret-client.jks', 'config/secret-trust.jks'] as const

export interface LeakProbe {
  app: FastifyInstance
  /** Where the probed configs' store names resolve (each store under its base name). */
  configRoot: string
  /** Every text that `xml` produces: loaded by check (from a file) and by a reload (inline, so by parseConfig), then printed() if it loaded. */
  texts: (xml: string) => Promise<Record<string, string>>
  /** The printed forms of what the gateway hands out now (stats(), registry, clients, dispatchers, settings), and a log line of them. */
  printed: () => Record<string, string>
}

const inspected = (value: unknown): string => inspect(value, { depth: 8 })

function json (value: unknown): string {
  try {
    return JSON.stringify(value) ?? ''
  } catch (err) {
    return `(JSON.stringify threw: ${(err as Error).message})`
  }
}

function errorText (err: unknown): string {
  const e = err as Error & { errors?: unknown }
  return [e.message, String(e.stack), json(e.errors), json(e), inspected(e)].join('\n')
}

/** A gateway (logging everything, down to trace) whose config each texts() call replaces. */
export async function leakProbe (t: Teardown): Promise<LeakProbe> {
  const configRoot = mkdtempSync(join(tmpdir(), 'fhp-leaks-'))
  t.teardown(() => { rmSync(configRoot, { recursive: true, force: true }) })
  for (const name of PROBE_STORES) copyFileSync(resolve(__dirname, '..', 'fixtures', name), join(configRoot, basename(name)))
  const file = join(configRoot, 'http-connection-pool.cfg.xml')
  writeFileSync(file, wrap('<pool id="start" default="true"/>'))
  // A new file each time: ext4 flushes a file truncated for rewriting to disk,
  // which would cost more than all the rest of a probe.
  const rewrite = (text: string): void => {
    rmSync(file)
    writeFileSync(file, text)
  }
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'trace', stream: logs.stream } })
  t.teardown(async () => { await app.close() })
  await app.register(plugin, { config: file })
  await app.ready()

  const printed = (): Record<string, string> => {
    const out: Record<string, string> = {}
    const firstLog = logs.raw.length
    out['stats()'] = json(app.pools.stats())
    out['inspect(registry)'] = inspected(app.pools)
    out['JSON(registry)'] = json(app.pools)
    for (const id of app.pools.ids) {
      const client = app.pools.get(id)
      out[`inspect(client ${id})`] = inspected(client)
      out[`JSON(client ${id})`] = json(client)
      out[`inspect(dispatcher ${id})`] = inspected(client.dispatcher)
      out[`JSON(dispatcher ${id})`] = json(client.dispatcher)
      out[`inspect(settings ${id})`] = inspected(client.settings)
      out[`JSON(settings ${id})`] = json(client.settings)
      app.log.info({ client, dispatcher: client.dispatcher, settings: client.settings, pools: app.pools }, 'logged objects')
    }
    out['logged objects'] = logs.raw.slice(firstLog).join('')
    return out
  }

  const texts = async (xml: string): Promise<Record<string, string>> => {
    const out: Record<string, string> = {}
    // Only this config's lines matter: thousands of probes keep no others.
    logs.raw.length = 0
    logs.lines.length = 0
    rewrite(xml)
    const lines: string[] = []
    // Independent: check reads the file while the gateway reloads.
    await Promise.all([
      check(file, { out: (l) => lines.push(l), err: (l) => lines.push(l) }),
      app.pools.reload({ xml }).catch((err: unknown) => { out['reload error'] = errorText(err) })
    ])
    out['check output'] = lines.join('\n')
    out['log lines'] = logs.raw.join('')
    out['stats()'] = json(app.pools.stats())
    // A refused config leaves the objects as the last loaded one made them (and printed them).
    return out['reload error'] === undefined ? { ...out, ...printed() } : out
  }
  return { app, configRoot, texts, printed }
}

/** The places (keys of `texts`) where `secret` shows. */
export function leaksOf (texts: Record<string, string>, secret: string): string[] {
  return Object.entries(texts).filter(([, text]) => text.includes(secret)).map(([where]) => where)
}

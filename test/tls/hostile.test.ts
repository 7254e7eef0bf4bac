// Damaged files never crash the readers: whatever the bytes, loading either
// succeeds or throws a ConfigError, quickly, without reading out of bounds.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../lib/config/errors.js'
import { loadTlsMaterial } from '../../lib/tls/index.js'
import { EXTRA, SHARED, keystore, pool } from './helpers.js'

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function mutate (buf: Buffer, rnd: () => number): Buffer {
  const out = Buffer.from(buf)
  const kind = Math.floor(rnd() * 3)
  if (kind === 0) return out.subarray(0, Math.floor(rnd() * out.length)) // truncate
  const flips = 1 + Math.floor(rnd() * 4)
  for (let i = 0; i < flips; i++) {
    const at = Math.floor(rnd() * out.length)
    out[at] = kind === 1 ? out[at]! ^ (1 << Math.floor(rnd() * 8)) : Math.floor(rnd() * 256)
  }
  return out
}

t.test('mutated stores load or fail with a ConfigError', async (t) => {
  const sources: [string, string, string, string][] = [
    [join(SHARED, 'client.jks'), 'password', 'keypass', 'jks'],
    [join(SHARED, 'client.p12'), 'password', 'password', 'p12'],
    [join(SHARED, 'truststore.p12'), 'password', 'password', 'p12'],
    [join(EXTRA, 'client-plain.p12'), '', '', 'p12'],
    [join(SHARED, 'client-combined.pem'), 'password', 'keypass', 'pem'],
    [join(EXTRA, 'ca.der'), 'password', 'password', 'der']
  ]
  const dir = t.testdir({ placeholder: '' })
  const settings = pool(keystore('placeholder', 'x', 'x'), dir)
  const rnd = prng(20260101)
  const seen = new Map<string, number>()
  const start = Date.now()
  for (const [file, store, key, label] of sources) {
    const original = readFileSync(file)
    for (let i = 0; i < 60; i++) {
      const bytes = mutate(original, rnd)
      const name = `m-${label}`
      writeFileSync(join(dir, name), bytes)
      for (const role of ['keystore', 'truststore'] as const) {
        const s = role === 'keystore'
          ? { ...settings, 'keystore-filename': name, 'keystore-password': store, 'key-password': key }
          : { ...settings, 'keystore-filename': null, 'keystore-password': null, 'key-password': null, 'truststore-filename': name, 'truststore-password': store }
        try {
          loadTlsMaterial(s, dir)
          seen.set('loaded', (seen.get('loaded') ?? 0) + 1)
        } catch (err) {
          if (!(err instanceof ConfigError)) {
            t.fail(`${label} #${i} as ${role}: ${String(err)} (bytes ${bytes.toString('base64').slice(0, 80)}...)`)
            continue
          }
          const a = err.errors[0]?.attribute ?? '?'
          seen.set(a, (seen.get(a) ?? 0) + 1)
        }
      }
    }
  }
  t.ok(seen.get('keystore-filename')! > 0 && seen.get('keystore-password')! > 0, `outcomes: ${JSON.stringify(Object.fromEntries(seen))}`)
  t.ok(Date.now() - start < 60_000, 'in reasonable time')
})

t.test('absurd lengths and nesting are refused, not followed', async (t) => {
  const dir = t.testdir({
    // SEQUENCE claiming a 4 GiB length
    'huge.der': Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x03]),
    // 200 nested indefinite-length SEQUENCEs: INTEGER 3 first so it looks like a PFX
    'deep.p12': Buffer.concat([Buffer.from([0x30, 0x80, 0x02, 0x01, 0x03]), Buffer.alloc(400, Buffer.from([0x30, 0x80])), Buffer.alloc(402, 0)]),
    // JKS declaring 2^32-1 entries in 12 bytes
    'many.jks': Buffer.from([0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff]),
    // JKS entry with a 4 GiB key
    'bigkey.jks': Buffer.from([0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0x61, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
  })
  for (const file of ['huge.der', 'deep.p12', 'many.jks', 'bigkey.jks']) {
    const settings = pool({ 'truststore-filename': file, 'truststore-password': 'password' }, dir)
    try {
      loadTlsMaterial(settings, dir)
      t.fail(`${file} loaded`)
    } catch (err) {
      t.type(err, ConfigError, file)
      t.equal((err as ConfigError).errors[0]?.attribute, 'truststore-filename', `${file}: ${(err as ConfigError).errors[0]?.message}`)
    }
  }
})

// SPEC "Nothing leaks", as a property: configs with random secrets (store
// passwords, proxy user-info, static header values) and one random mutation
// each, or none (a quote swapped, the file cut short, a value of the wrong
// type, an attribute renamed or added, a markup character deleted or inserted) never
// show a secret in any error, `check` output, log line, stats() or printed
// object (leakProbe lists them all).
//
// CI runs a fixed seed. FHP_SECRETS_SEED=random (or a number) runs another
// seed, FHP_SECRETS_CASES another count; a failure prints the seed, the case
// and its config, so it can be replayed.
import t from 'tap'
import { leakProbe, leaksOf } from '../helpers/secrets.js'
import { wrap } from '../helpers/xml.js'

const FIXED_SEED = 14
const seedEnv = process.env.FHP_SECRETS_SEED
const SEED = seedEnv === undefined || seedEnv === '' ? FIXED_SEED : seedEnv === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedEnv)
const CASES = Number(process.env.FHP_SECRETS_CASES ?? 2000)

/** mulberry32: a small seeded generator, so a seed replays its cases exactly. */
function generator (seed: number) {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.floor(next() * n)
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!
  const chance = (p: number): boolean => next() < p
  return { int, pick, chance }
}
type Random = ReturnType<typeof generator>

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
// Whatever an operator may type, markup characters included; header values are visible Latin-1.
const PUNCTUATION = ' !"#$%&\'()+,-./:;<=>?@[\\]^_`{|}~'
const LATIN1 = 'éüßøÿ¡«»'
const WIDE = 'ЖΩ€中🔑'

/**
 * A secret: four letters or digits, 2 to 10 of anything, one more letter or
 * digit; long and random enough never to show by chance (as part of a mask, a
 * word or a number), and with no white space at its ends, which XML would keep
 * but a reader of the value might not.
 */
function secret (r: Random, wide: boolean): string {
  const any = [...ALNUM + PUNCTUATION + LATIN1 + (wide ? WIDE : '')]
  let s = ''
  for (let i = 0; i < 4; i++) s += r.pick([...ALNUM])
  for (let i = 2 + r.int(9); i > 0; i--) s += r.pick(any)
  return s + r.pick([...ALNUM])
}

const escapeFor = (value: string, quote: string): string =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(quote === '"' ? /"/g : /'/g, quote === '"' ? '&quot;' : '&apos;')

/**
 * A well-formed config of one to three pools, with secrets in some (a JKS
 * store refuses its random password, the other pools load); every secret and
 * each form it is written in.
 */
function generate (r: Random): { xml: string, secrets: string[] } {
  const secrets: string[] = []
  const keep = (s: string, ...forms: string[]): string => {
    secrets.push(s, ...forms.filter((f) => f !== s))
    return s
  }
  const attr = (name: string, value: string, isSecret = false): string => {
    const quote = r.chance(0.3) ? "'" : '"'
    const written = escapeFor(value, quote)
    if (isSecret && written !== value) secrets.push(written)
    return ` ${name}=${quote}${written}${quote}`
  }
  const pools = 1 + r.int(3)
  const body: string[] = []
  for (let p = 0; p < pools; p++) {
    let attrs = attr('id', ['main', 'p-1', 'b.x', '__proto__'][p] ?? `p${p}`) + (p === 0 ? attr('default', 'true') : '')
    const plain: Array<[string, string]> = [
      ['cache.ttl', String(r.int(5000))],
      ['http.socket.timeout', String(r.int(60000))],
      ['keepalive.timeout', String(r.int(3))],
      ['http.tcp.nodelay', r.pick(['true', 'false', '1', '0'])],
      ['x:retry.max-attempts', String(1 + r.int(4))],
      ['x:retry.methods', 'GET,PUT'],
      ['x:queue.timeout', String(r.int(1000))]
    ]
    for (const [name, value] of plain) if (r.chance(0.3)) attrs += attr(name, value)
    if (r.chance(0.5)) {
      // Mostly the PEM keystore, which loads; the JKS ones refuse a random password.
      const file = r.pick(['client-combined.pem', 'client-combined.pem', 'client.jks', 'secret-client.jks'])
      attrs += attr('keystore-filename', file) + attr('keystore-password', keep(secret(r, true)), true)
      // The PEM key opens with its own password (not a random one): that pool loads, so its printed forms are probed too.
      attrs += file === 'client-combined.pem' ? attr('key-password', 'keypass') : attr('key-password', keep(secret(r, true)), true)
    }
    // A PEM truststore has no password to check, so it loads with any.
    if (r.chance(0.4)) attrs += attr('truststore-filename', r.pick(['truststore.pem', 'truststore.pem', 'secret-trust.jks'])) + attr('truststore-password', keep(secret(r, true)), true)
    if (r.chance(0.4)) {
      const user = secret(r, true)
      const pass = secret(r, true)
      const encoded = `${encodeURIComponent(user)}:${encodeURIComponent(pass)}`
      keep(user, encodeURIComponent(user))
      keep(pass, encodeURIComponent(pass), encoded, Buffer.from(`${user}:${pass}`).toString('base64'))
      attrs += attr('http.route.default-proxy', `${r.pick(['http://', ''])}${encoded}@127.0.0.1:${1 + r.int(65535)}`, true)
    }
    const headers = r.chance(0.6) ? 1 + r.int(3) : 0
    if (headers === 0) {
      body.push(`<pool${attrs}/>`)
      continue
    }
    const hs: string[] = []
    for (let h = 0; h < headers; h++) hs.push(`<header${attr('name', `x-h${h}`)}${attr('value', keep(secret(r, false)), true)}/>`)
    body.push(`<pool${attrs}>\n  <headers>${hs.join('')}</headers>\n</pool>`)
  }
  return { xml: wrap(body.join('\n')), secrets }
}

const MUTATIONS = {
  none: (xml: string): string => xml,
  'quote swapped': (xml: string, r: Random): string => {
    const at = positions(xml, /["']/g)
    if (at.length === 0) return xml
    const i = r.pick(at)
    return xml.slice(0, i) + (xml[i] === '"' ? "'" : '"') + xml.slice(i + 1)
  },
  'cut short': (xml: string, r: Random): string => xml.slice(0, 1 + r.int(xml.length - 1)),
  'wrong type': (xml: string, r: Random): string => {
    const at = [...xml.matchAll(/ (cache\.ttl|http\.[\w.-]+|keepalive\.timeout|x:[\w.-]+|default)=(["'])[^"']*\2/g)]
    if (at.length === 0) return xml
    const m = r.pick(at)
    const junk = r.pick(['abc', '-1', '2147483648', '1.5', '', 'yes', 'GET;PUT', '0x10', ' 1 2 '])
    return xml.slice(0, m.index) + ` ${m[1]}=${m[2]}${junk}${m[2]}` + xml.slice(m.index + m[0].length)
  },
  'attribute renamed': (xml: string, r: Random): string => {
    const at = [...xml.matchAll(/ ([\w:.-]+)=/g)].filter((m) => !m[1]!.startsWith('xmlns'))
    if (at.length === 0) return xml
    const m = r.pick(at)
    const name = m[1]!
    const i = r.int(name.length)
    const renamed = r.pick([name.slice(0, i) + name.slice(i + 1), name.slice(0, i) + r.pick([...'abcxyz-.']) + name.slice(i), `${name}s`, `x:${name}`])
    return xml.slice(0, m.index) + ` ${renamed || 'z'}=` + xml.slice(m.index + m[0].length)
  },
  'attribute added': (xml: string, r: Random): string => {
    const at = positions(xml, /<pool /g)
    if (at.length === 0) return xml
    const i = r.pick(at) + '<pool '.length
    return xml.slice(0, i) + `${r.pick(['bogus', 'x:retry.maxattempts', 'keystore-pasword', 'proxy'])}="1" ` + xml.slice(i)
  },
  'markup deleted': (xml: string, r: Random): string => {
    const at = positions(xml, /["'<>=/&]/g)
    if (at.length === 0) return xml
    const i = r.pick(at)
    return xml.slice(0, i) + xml.slice(i + 1)
  },
  'markup inserted': (xml: string, r: Random): string => {
    const i = r.int(xml.length)
    return xml.slice(0, i) + r.pick(['"', "'", '<', '>', '=', '&', ' ', '/>']) + xml.slice(i)
  }
} satisfies Record<string, (xml: string, r: Random) => string>

function positions (text: string, re: RegExp): number[] {
  return [...text.matchAll(re)].map((m) => m.index)
}

t.test(`no secret shows anywhere, over ${CASES} mutated configs (seed ${SEED})`, async (t) => {
  t.comment(`seed ${SEED}${seedEnv === undefined ? ' (fixed; FHP_SECRETS_SEED=random runs another)' : ''}`)
  const probe = await leakProbe(t)
  const r = generator(SEED)
  const names = Object.keys(MUTATIONS) as Array<keyof typeof MUTATIONS>
  const failures: string[] = []
  const seen: Record<string, number> = {}
  for (let n = 1; n <= CASES && failures.length < 3; n++) {
    const { xml: valid, secrets } = generate(r)
    const mutation = r.pick(names)
    const xml = MUTATIONS[mutation](valid, r)
    const texts = await probe.texts(xml)
    const outcome = texts['reload error'] === undefined ? 'loaded' : 'refused'
    seen[`${mutation}, ${outcome}`] = (seen[`${mutation}, ${outcome}`] ?? 0) + 1
    for (const s of secrets) {
      const where = leaksOf(texts, s)
      if (where.length > 0) {
        failures.push(`seed ${SEED}, case ${n} (${mutation}): secret ${JSON.stringify(s)} shows in ${where.join(', ')}\n` +
          `replay: FHP_SECRETS_SEED=${SEED} npx tap test/config/secrets-property.test.ts\nconfig:\n${xml}\n` +
          `${where[0]}:\n${texts[where[0]!]!.slice(0, 2000)}`)
        break
      }
    }
  }
  t.same(failures, [], `no secret leaked (seed ${SEED}; replay with FHP_SECRETS_SEED=${SEED})`)
  t.comment(Object.entries(seen).sort().map(([k, v]) => `${k}: ${v}`).join('; '))
  // Each mutation must reach the error paths, and some configs must load
  // (so the printed objects hold secrets), or paths went untested.
  for (const name of names.filter((m) => m !== 'none')) t.ok((seen[`${name}, refused`] ?? 0) > 0, `${name}: some configs were refused`)
  t.ok((seen['none, loaded'] ?? 0) > CASES / 50, 'some configs loaded, and were printed')
})

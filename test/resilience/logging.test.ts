// Issue 6 F: when a forward fails, the gateway logs one warn line that names
// the pool, the upstream origin and the cause (the stable code and what
// happened on the wire), captured from a real Fastify logger.
import t from 'tap'
import { faultServer, refusedPort, type Behaviour } from '../helpers/fault-server.js'
import { config, gateway, pool, WARN, type Gateway, type LogLine, type Tap } from '../helpers/resilience.js'

// reply-from 12 wraps ECONNRESET, UND_ERR_SOCKET and UND_ERR_CONNECT_TIMEOUT in
// errors that carry the same code: the line must still come from undici's own
// error, which has the origin the router attached and what happened.

interface Case {
  name: string
  /** Extra attributes of pool `banana`. */
  attributes?: Record<string, string | number>
  /** Where the request goes, and what happens there. */
  target: (t: Tap, gw: Gateway) => Promise<string>
  status: number
  code: string
  /** What the message must say about the cause. */
  cause: RegExp
}

const faulty = (...sequence: Behaviour[]) => async (t: Tap): Promise<string> => {
  const up = await faultServer(t)
  up.serve(...sequence)
  return `${up.origin}/fruit`
}

const CASES: Case[] = [
  {
    name: 'connection refused',
    target: async () => `http://127.0.0.1:${await refusedPort()}/fruit`,
    status: 502,
    code: 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE',
    cause: /ECONNREFUSED/
  },
  {
    name: 'reset before the response',
    target: faulty('reset-before-headers'),
    status: 502,
    code: 'FST_HTTP_POOLS_UPSTREAM_RESET',
    cause: /ECONNRESET|other side closed/
  },
  {
    name: 'socket timeout',
    attributes: { 'http.socket.timeout': 300 },
    target: faulty('slow-headers'),
    status: 504,
    code: 'FST_HTTP_POOLS_SOCKET_TIMEOUT',
    cause: /Headers Timeout|no final response within http\.socket\.timeout/i
  },
  {
    name: 'a response that breaks a limit',
    target: faulty('too-many-headers'),
    status: 502,
    code: 'FST_HTTP_POOLS_BAD_RESPONSE',
    cause: /max-header-count/
  },
  {
    name: 'open circuit',
    attributes: { 'x:circuit-breaker.threshold': 1, 'x:circuit-breaker.reset': 30000 },
    target: async (t, gw) => {
      const url = await faulty({ status: 503 })(t)
      t.equal((await gw.forward('banana', url)).statusCode, 503, 'one 503 opens the circuit')
      gw.logs.length = 0
      return url
    },
    status: 503,
    code: 'FST_HTTP_POOLS_CIRCUIT_OPEN',
    cause: /circuit open/
  },
  {
    name: 'request timeout',
    attributes: { 'x:request.timeout': 300 },
    target: faulty('hang'),
    status: 504,
    code: 'FST_HTTP_POOLS_REQUEST_TIMEOUT',
    cause: /x:request\.timeout/
  }
]

const pluginLines = (logs: LogLine[]): LogLine[] => logs.filter((l) => l.level === WARN && l.pool !== undefined)

for (const c of CASES) {
  t.test(`${c.name}: the warn line names pool, origin and cause`, async (t) => {
    const xml = config(pool('main', { default: 'true' }), pool('banana', { 'x:retry.max-attempts': 1, ...c.attributes }))
    const gw = await gateway(t, xml)
    const url = await c.target(t, gw)
    const res = await gw.forward('banana', url)
    t.equal(res.statusCode, c.status)
    t.equal(res.json().code, c.code)
    const lines = pluginLines(gw.logs)
    t.equal(lines.length, 1, 'one warn line for the failure')
    const line = lines[0]
    t.equal(line?.pool, 'banana', 'names the pool')
    t.equal(line?.code, c.code, 'names the code')
    t.equal(line?.origin, new URL(url).origin, 'names the origin')
    t.match(line?.msg, c.cause, `says what happened (${String(line?.msg)})`)
    await gw.settled('banana')
  })
}

t.test('a forward that succeeds logs no warning', async (t) => {
  const gw = await gateway(t, config(pool('main', { default: 'true' }), pool('banana')))
  const url = await faulty('ok')(t)
  t.equal((await gw.forward('banana', url)).statusCode, 200)
  t.same(gw.logs.filter((l) => l.level >= WARN), [])
})

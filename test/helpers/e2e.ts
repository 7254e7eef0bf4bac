// End-to-end helpers (test/e2e): a real gateway built from inline XML with
// configRoot test/fixtures/tls, one forwarding route per pool, real upstream
// servers (HTTP, HTTPS, HTTP/2) on 127.0.0.1 port 0, and a pino stream that
// keeps every log line. Everything is closed at teardown.
import Fastify, { type FastifyInstance } from 'fastify'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, type SecureServerOptions } from 'node:http2'
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https'
import { type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { resolve } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { request as undiciRequest, type Dispatcher } from 'undici'
import plugin from '../../index.js'
import { logCapture, type LogLine } from './logs.js'
import type { Teardown } from './tap.js'
import { BOUND_MS } from './wait.js'

export { codesOf, rejection } from './errors.js'
export type { LogLine } from './logs.js'
export { freePort as closedPort } from './net.js'
export type { Teardown } from './tap.js'
export { BOUND_MS } from './wait.js'
export { config, EXT_NS, pool, REPOSE_NS } from './xml.js'

/** test/fixtures/tls (see its README for subjects and passwords), as an absolute path. */
export const TLS_ROOT = resolve(__dirname, '..', 'fixtures', 'tls')

/** A fixture's bytes. */
export function tlsFile (name: string): Buffer {
  return readFileSync(resolve(TLS_ROOT, name))
}

// The stores of test/fixtures/tls with their passwords.
export const JKS_KEYSTORE = { 'keystore-filename': 'client.jks', 'keystore-password': 'password', 'key-password': 'keypass' }
export const P12_KEYSTORE = { 'keystore-filename': 'client.p12', 'keystore-password': 'password', 'key-password': 'password' }
export const PEM_KEYSTORE = { 'keystore-filename': 'client-combined.pem', 'keystore-password': 'anything', 'key-password': 'keypass' }
export const JKS_TRUSTSTORE = { 'truststore-filename': 'truststore.jks', 'truststore-password': 'password' }
export const PEM_TRUSTSTORE = { 'truststore-filename': 'truststore.pem', 'truststore-password': 'password' }

export interface Gateway {
  app: FastifyInstance
  /** `http://127.0.0.1:PORT` of the listening gateway. */
  url: string
  /** Every log line the gateway wrote (level warn and above unless told otherwise), parsed. */
  logs: LogLine[]
  /** The raw log text, for "never appears in the logs" checks. */
  rawLogs: () => string
  /** GET `/<pool>?to=<target>`: the route of that pool forwards to `target` with `reply.from()`. */
  forward: (poolId: string, target: string) => Promise<Got>
}

/**
 * A listening gateway: the plugin registered with inline `xml` and configRoot
 * test/fixtures/tls, and for each pool id a route `GET /<id>` declared with
 * `{ pool: id }` whose handler forwards to the `to` query parameter.
 */
export async function gateway (t: Teardown, xml: string, options: { logLevel?: string } = {}): Promise<Gateway> {
  const logs = logCapture()
  const app = Fastify({ logger: { level: options.logLevel ?? 'warn', stream: logs.stream } })
  t.teardown(async () => { await app.close() })
  await app.register(plugin, { xml, configRoot: TLS_ROOT })
  for (const id of app.pools.ids) {
    app.get(`/${id}`, { pool: id }, (req, reply) => reply.from((req.query as { to: string }).to))
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  return {
    app,
    url,
    logs: logs.lines,
    rawLogs: () => logs.raw.join(''),
    forward: async (poolId, target) => await get(`${url}/${poolId}?to=${encodeURIComponent(target)}`)
  }
}

export interface Got {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: () => any
}

/** undici.request (the global dispatcher, or the given one), bounded by BOUND_MS, body read in full. */
export async function get (url: string, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> = {}): Promise<Got> {
  const res = await undiciRequest(url, { signal: AbortSignal.timeout(BOUND_MS), ...options })
  const text = await res.body.text()
  return { statusCode: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}

/** `app.pools.get(id).request(url)`, bounded by BOUND_MS, body read in full. */
export async function poolGet (app: FastifyInstance, id: string, url: string): Promise<Got> {
  const res = await app.pools.get(id).request(url, { signal: AbortSignal.timeout(BOUND_MS) })
  const text = await res.body.text()
  return { statusCode: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}

type AnyHandler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void

/** Listens on 127.0.0.1 port 0; at teardown destroys every connection (TLS ones by their TCP socket), then closes. */
async function listen (t: Teardown, server: NetServer): Promise<number> {
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    const closed = new Promise((resolve) => server.close(resolve))
    for (const s of sockets) s.destroy()
    await closed
  })
  return (server.address() as AddressInfo).port
}

export interface Upstream {
  port: number
  /** Requests that reached the handler. */
  hits: () => number
  /** TLS handshakes the server aborted (`tlsClientError`), with their codes. */
  tlsErrors: string[]
}

function counting (handler: AnyHandler): { listener: AnyHandler, hits: () => number } {
  let n = 0
  return { listener: (req, res) => { n++; handler(req, res) }, hits: () => n }
}

/** An HTTP/1.1 upstream on 127.0.0.1. */
export async function httpUpstream (t: Teardown, handler: AnyHandler): Promise<Upstream> {
  const { listener, hits } = counting(handler)
  const server = createHttpServer(listener as never)
  return { port: await listen(t, server), hits, tlsErrors: [] }
}

/** An HTTPS (HTTP/1.1 only) upstream on 127.0.0.1. */
export async function httpsUpstream (t: Teardown, tls: HttpsOptions, handler: AnyHandler): Promise<Upstream> {
  const { listener, hits } = counting(handler)
  const server = createHttpsServer(tls, listener as never)
  const tlsErrors: string[] = []
  server.on('tlsClientError', (err: Error & { code?: string }) => { tlsErrors.push(err.code ?? err.message) })
  return { port: await listen(t, server), hits, tlsErrors }
}

/** An HTTP/2 upstream (with `allowHTTP1` as given) on 127.0.0.1. */
export async function http2Upstream (t: Teardown, tls: SecureServerOptions, handler: AnyHandler): Promise<Upstream> {
  const { listener, hits } = counting(handler)
  const server = createSecureServer(tls, listener as never)
  const tlsErrors: string[] = []
  server.on('tlsClientError', (err: Error & { code?: string }) => { tlsErrors.push(err.code ?? err.message) })
  return { port: await listen(t, server as unknown as NetServer), hits, tlsErrors }
}

/** TLS material of the normal test server: `CN=localhost`, SAN localhost, 127.0.0.1, ::1, signed by the test CA. */
export function serverTls (cert = 'server'): HttpsOptions {
  return { key: tlsFile(`${cert}.key`), cert: tlsFile(`${cert}.pem`) }
}

/** The normal server, also requiring a client certificate signed by the test CA. */
export function mutualTls (): HttpsOptions {
  return { ...serverTls(), ca: [tlsFile('ca.pem')], requestCert: true, rejectUnauthorized: true }
}

/** The peer certificate's CN as the upstream saw it ('' when none). */
export function peerCn (req: IncomingMessage | Http2ServerRequest): string {
  const cert = (req.socket as TLSSocket).getPeerCertificate()
  return cert?.subject?.CN === undefined ? '' : String(cert.subject.CN)
}

/** SHA-256 fingerprint of the client certificate the upstream saw ('' when none). */
export function peerFingerprint (req: IncomingMessage | Http2ServerRequest): string {
  return (req.socket as TLSSocket).getPeerCertificate()?.fingerprint256 ?? ''
}

/** The SNI name the client sent, as the upstream saw it ('' when none). */
export function servername (req: IncomingMessage | Http2ServerRequest): string {
  const name = (req.socket as TLSSocket & { servername?: string | false }).servername
  return typeof name === 'string' ? name : ''
}

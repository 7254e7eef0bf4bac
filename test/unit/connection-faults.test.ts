// lib/pool/connection-faults.ts: how a connection explains the failure of a
// request that went out on it, from what its socket and HTTP/2 session told
// it. The socket, session and streams are stand-ins that emit what Node's
// would; test/resilience/faults.test.ts proves the same on real sockets.
import { EventEmitter } from 'node:events'
import { constants, type ClientHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import t from 'tap'
import type { Controller } from '../../lib/handler/decorator.js'
import { ConnectionFaults, watchRequest } from '../../lib/pool/connection-faults.js'

class StandInSocket extends EventEmitter {
  destroyed = false
  constructor (readonly alpnProtocol: string | false) { super() }
  destroy (): this { this.destroyed = true; return this }
}

const controller: Controller = { aborted: false, paused: false, reason: null, abort () {}, pause () {}, resume () {} }

/** A watched connection and a way to send requests on it: each gets a stream when `streamId` is given. */
function connection (alpn: string | false = 'h2') {
  const faults = new ConnectionFaults()
  const socket = new StandInSocket(alpn)
  faults.watch(socket as unknown as Socket)
  const session = new EventEmitter()
  const send = (streamId?: number, rstCode = 0) => {
    const seen: Error[] = []
    const [, request] = watchRequest({ path: '/', method: 'GET' }, { onResponseError: (_c, err) => { seen.push(err) } })
    request.faults = faults
    request.onRequestStart(controller, {})
    if (streamId !== undefined) faults.opened({ id: streamId, rstCode, session } as unknown as ClientHttp2Stream)
    return {
      request,
      fail: (err: Error & { code?: string }): Error & { code?: string } => {
        request.onResponseError(controller, err)
        return seen[0]!
      }
    }
  }
  return { faults, socket, session, send }
}

const error = (code: string, message = code): Error & { code: string } => Object.assign(new Error(message), { code })
const STREAM_ERROR = (name: string): Error => error('ERR_HTTP2_STREAM_ERROR', `Stream closed with error code ${name}`)

t.test('RST_STREAM before the response headers: REFUSED_STREAM was not processed, any other code is a reset', async (t) => {
  const { send } = connection()
  t.equal(send(1, constants.NGHTTP2_REFUSED_STREAM).fail(STREAM_ERROR('NGHTTP2_REFUSED_STREAM')).code, 'FST_HTTP_POOLS_STREAM_REFUSED')
  t.equal(send(3, constants.NGHTTP2_INTERNAL_ERROR).fail(STREAM_ERROR('NGHTTP2_INTERNAL_ERROR')).code, 'FST_HTTP_POOLS_STREAM_RESET')
  // undici's own reports of a stream the origin cancelled or ended before any header.
  t.equal(send(5).fail(error('UND_ERR_INFO', 'HTTP/2: stream closed before the response was complete')).code, 'FST_HTTP_POOLS_STREAM_RESET')
  t.equal(send(7).fail(error('UND_ERR_INFO', 'HTTP/2: stream half-closed (remote)')).code, 'FST_HTTP_POOLS_STREAM_RESET')
  const refusedLate = send(9, constants.NGHTTP2_REFUSED_STREAM)
  refusedLate.request.onResponseStart(controller, 200, {}, '')
  const late = refusedLate.fail(STREAM_ERROR('NGHTTP2_REFUSED_STREAM'))
  t.equal(late.code, 'FST_HTTP_POOLS_STREAM_RESET', 'after the headers, even REFUSED_STREAM is a reset')
  t.match(late.message, /after the response headers/)
})

t.test('ENHANCE_YOUR_CALM before the headers (Node refusing a response of over 128 header fields) is a bad response', async (t) => {
  const { send } = connection()
  t.equal(send(1, constants.NGHTTP2_ENHANCE_YOUR_CALM).fail(STREAM_ERROR('NGHTTP2_ENHANCE_YOUR_CALM')).code, 'FST_HTTP_POOLS_BAD_RESPONSE')
})

t.test('GOAWAY: a stream above its last stream id was not processed; one at or below it may have been', async (t) => {
  const { session, send } = connection()
  const above = send(3)
  const covered = send(1)
  session.emit('goaway', constants.NGHTTP2_NO_ERROR, 1)
  const goawayError = error('UND_ERR_SOCKET', 'HTTP/2: "GOAWAY" frame received with code 0')
  const refused = above.fail(goawayError)
  t.equal(refused.code, 'FST_HTTP_POOLS_STREAM_REFUSED')
  t.match(refused.message, /GOAWAY \(code 0, last stream 1\) left stream 3 out: not processed/)
  const cut = covered.fail(goawayError)
  t.equal(cut.code, 'FST_HTTP_POOLS_STREAM_CUT')
  t.match(cut.message, /stream 1 in flight, which it may have processed: not sent again/)
  t.equal(send().fail(error('ERR_HTTP2_INVALID_SESSION')).code, 'FST_HTTP_POOLS_STREAM_REFUSED', 'a request written on a closed session never went out')
})

t.test('a TLS failure of the socket explains the failures on it before a response; a new socket forgets it', async (t) => {
  const { faults, socket, send } = connection('http/1.1')
  const answered = send()
  answered.request.onResponseStart(controller, 200, {}, '')
  const alert = error('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
  socket.emit('error', alert)
  t.ok(socket.destroyed, 'the socket is destroyed: over HTTP/2 it would stay open on a dead session')
  t.equal(send().fail(error('UND_ERR_SOCKET', 'other side closed')), alert, 'the origin\'s TLS alert, not "other side closed"')
  t.equal(answered.fail(error('UND_ERR_SOCKET')).code, 'UND_ERR_SOCKET', 'a response had started: the failure is its own')
  faults.watch(new StandInSocket('http/1.1') as unknown as Socket)
  t.equal(send().fail(error('ECONNRESET')).code, 'ECONNRESET', 'on a new socket a reset is a reset')
  socket.emit('error', error('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'))
  t.equal(send().fail(error('ECONNRESET')).code, 'ECONNRESET', 'nor does a late TLS error of the old socket')
})

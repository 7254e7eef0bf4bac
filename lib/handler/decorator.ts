import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'

/** undici's controller-based handler: the only handler shape the layers speak. */
export type Handler = Dispatcher.DispatchHandler
export type Controller = Dispatcher.DispatchController
export type Dispatch = Dispatcher.Dispatch
/** A `Dispatcher.compose` layer. */
export type Interceptor = Dispatcher.DispatcherComposeInterceptor

/** Passes every event on to `inner`; a layer overrides the events it acts on. */
export class HandlerDecorator implements Handler {
  constructor (protected readonly inner: Handler) {}

  onRequestStart (controller: Controller, context: unknown): void {
    this.inner.onRequestStart?.(controller, context)
  }

  onRequestUpgrade (controller: Controller, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.inner.onRequestUpgrade?.(controller, statusCode, headers, socket)
  }

  onResponseStart (controller: Controller, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage)
  }

  onResponseData (controller: Controller, chunk: Buffer): void {
    this.inner.onResponseData?.(controller, chunk)
  }

  onResponseEnd (controller: Controller, trailers: IncomingHttpHeaders): void {
    this.inner.onResponseEnd?.(controller, trailers)
  }

  onResponseError (controller: Controller, err: Error): void {
    this.inner.onResponseError?.(controller, err)
  }
}

/**
 * The controller of an exchange that never started (its dispatcher was
 * closing): already aborted, so a handler that acts on it changes nothing.
 */
export function refusedController (reason: Error): Controller {
  return { aborted: true, paused: false, reason, abort () {}, pause () {}, resume () {} }
}

/**
 * `layers` over `dispatcher` (the first one innermost), as one dispatch
 * function. `Dispatcher.compose` hands every layer a controller-based handler,
 * whatever shape the caller used; with no layer it would not adapt a caller's
 * handler at all, so one is required.
 */
export function composeDispatch (dispatcher: Dispatcher, layers: Array<Interceptor | null>): Dispatch {
  const present = layers.filter((i): i is Interceptor => i !== null)
  if (present.length === 0) throw new TypeError('composeDispatch needs at least one layer')
  return dispatcher.compose(present).dispatch
}

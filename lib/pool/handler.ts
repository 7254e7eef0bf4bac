import type { Dispatcher } from 'undici'
// undici exports no way to adapt a handler of the new shape (onRequestStart…)
// to the one its clients call (onConnect, onHeaders…); its own adapter is used.

const UnwrapHandler = require('undici/lib/handler/unwrap-handler.js') as { unwrap: (h: object) => Handler }

/** The handler shape undici's clients call, with raw header buffers. */
export interface Handler {
  onConnect?: (abort: (err?: Error) => void, context?: object) => void
  onHeaders?: (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string) => boolean
  onData?: (chunk: Buffer) => boolean
  onComplete?: (trailers: string[] | null) => void
  onError?: (err: Error) => void
  onUpgrade?: (statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex) => void
  onResponseStarted?: () => void
}

export function asLegacyHandler (handler: Dispatcher.DispatchHandler): Handler {
  return UnwrapHandler.unwrap(handler)
}

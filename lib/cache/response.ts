import type { Dispatcher } from 'undici'
import { readUpTo, type CachedResponse, type Fetched } from './cache.js'
import { ReplayBody } from './replay-body.js'

/** A response that many callers share: each gets its own headers object and body. */
export function materialize (r: CachedResponse): Dispatcher.ResponseData {
  return { statusCode: r.statusCode, headers: { ...r.headers }, trailers: {}, body: new ReplayBody(r.body), opaque: null, context: {} } as unknown as Dispatcher.ResponseData
}

/** Reads a response so that it can be shared, unless it is too large or `shareable` says no. */
export async function buffer (res: Dispatcher.ResponseData, maxBodyBytes: number, shareable = true): Promise<Fetched<Dispatcher.ResponseData>> {
  const { chunks, size, rest } = await readUpTo(res.body, maxBodyBytes)
  // One buffer: a hit is then sent as it is, with no copy.
  if (rest === undefined && shareable) return { shared: { statusCode: res.statusCode, headers: res.headers, body: [Buffer.concat(chunks, size)], size } }
  return { own: { ...res, body: new ReplayBody(chunks, rest) } as unknown as Dispatcher.ResponseData }
}

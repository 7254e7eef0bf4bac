import { OFF_ORIGIN, TRAVERSAL } from './errors.js'

// As many URLs as reply-from keeps: most gateways forward a few hot paths.
const CACHED = 100

/**
 * The upstream URLs of `source`s against `base`, built as reply-from builds
 * them (a source that climbs out with `..` or leaves the base's origin is
 * refused with reply-from's own error), and the last ones kept, so a hot path
 * costs a map lookup.
 */
export class TargetUrls {
  private readonly urls = new Map<string, URL>()
  private readonly baseHref: string | undefined

  constructor (private readonly base: string | undefined) {
    this.baseHref = base === undefined ? undefined : new URL(base).href
  }

  get (source: string): URL {
    let url = this.urls.get(source)
    if (url !== undefined) return url
    url = this.build(source)
    if (this.urls.size === CACHED) this.urls.delete(this.urls.keys().next().value!)
    this.urls.set(source, url)
    return url
  }

  private build (source: string): URL {
    // '..' is an attack as a whole segment only (Next.js routes have '[...slug]').
    const decoded = decodeURIComponent(source)
    if (decoded === '..' || decoded.includes('/..') || decoded.includes('../')) throw Object.assign(new Error(TRAVERSAL), { statusCode: 400 })
    const baseHref = this.baseHref
    if (baseHref === undefined) return new URL(source)
    // `//host/path` is a path on the base, not another host.
    const url = new URL(source.startsWith('//') ? '.' + source : source, this.base)
    const prefix = !baseHref.endsWith('/') && url.href.length > baseHref.length ? baseHref + '/' : baseHref
    if (!url.href.startsWith(prefix)) throw new Error(OFF_ORIGIN)
    return url
  }
}

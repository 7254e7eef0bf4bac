import { OFF_ORIGIN, TRAVERSAL } from './errors.js'

// As many URLs as reply-from keeps: most gateways forward a few hot paths.
const CACHED = 100

/** What a request needs of its upstream URL, read once per URL (URL's getters build strings each time). */
export interface Target { origin: string, host: string, pathname: string, search: string }

/**
 * The upstream URLs of `source`s against `base`, built as reply-from builds
 * them (a source that climbs out with `..` or leaves the base's origin is
 * refused with reply-from's own error), and the last ones kept, so a hot path
 * costs a map lookup.
 */
export class TargetUrls {
  private readonly urls = new Map<string, Target>()
  private readonly baseHref: string | undefined

  constructor (private readonly base: string | undefined) {
    this.baseHref = base === undefined ? undefined : new URL(base).href
  }

  get (source: string): Target {
    let target = this.urls.get(source)
    if (target !== undefined) return target
    const { origin, host, pathname, search } = this.build(source)
    target = { origin, host, pathname, search }
    if (this.urls.size === CACHED) this.urls.delete(this.urls.keys().next().value!)
    this.urls.set(source, target)
    return target
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

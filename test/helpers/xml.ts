// Builders of http-connection-pools XML configs for the tests.

export const REPOSE_NS = 'http://docs.openrepose.org/repose/http-connection-pool/v1.0'
export const EXT_NS = 'urn:fastify-http-pools:1'

/** `v` escaped for a double-quoted XML attribute value. */
export const xmlAttr = (v: string): string => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;')

/**
 * A complete config: the Repose root (with `x:` bound to the extension
 * namespace) around `body`. Line 1 is the root start tag, so the first line of
 * `body` is line 2.
 */
export function wrap (body: string, rootAttributes = ''): string {
  return `<http-connection-pools xmlns="${REPOSE_NS}" xmlns:x="${EXT_NS}"${rootAttributes}>\n${body}\n</http-connection-pools>\n`
}

/** A config whose pools are `body` (the `x:` prefix is bound to the extension namespace). */
export function poolsXml (body: string): string {
  return wrap(body)
}

/** A config of `pools`, one per line, the root on line 1: the n-th pool is on line n + 1. */
export function config (...pools: string[]): string {
  return wrap(pools.join('\n'))
}

/** One default pool `a` carrying `attributes` (and `inner` as its content). */
export function onePool (attributes: string, inner = ''): string {
  return wrap(inner === '' ? `<pool id="a" default="true" ${attributes}/>` : `<pool id="a" default="true" ${attributes}>${inner}</pool>`)
}

/**
 * `<pool id=... a="..."/>` (values escaped), with `<headers>` when `headers` has
 * entries; the first pool of a config should be given `default: 'true'`.
 */
export function pool (id: string, attributes: Record<string, string | number> = {}, headers: Record<string, string> = {}): string {
  const attrs = Object.entries(attributes).map(([k, v]) => ` ${k}="${xmlAttr(String(v))}"`).join('')
  const hs = Object.entries(headers)
  if (hs.length === 0) return `<pool id="${id}"${attrs}/>`
  const inner = hs.map(([name, value]) => `<header name="${xmlAttr(name)}" value="${xmlAttr(value)}"/>`).join('')
  return `<pool id="${id}"${attrs}><headers>${inner}</headers></pool>`
}

import type { Registry } from '@prometheus-io/client'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** `GET /metrics`: the registry's exposition; anything else 404. */
export async function listenMetrics (registry: Registry, port: number, host: string): Promise<{ url: string, server: Server }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n')
      return
    }
    registry.metrics().then((body) => {
      res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body)
    }, (err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return { url: `http://${shown}:${address.port}/metrics`, server }
}

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** The bundled origin of `serve` without `--origin`: echoes what reached it, as JSON. */
export async function startDemoOrigin (): Promise<{ url: string, server: Server }> {
  const server = createServer((req, res) => {
    const body = JSON.stringify({ origin: 'fastify-http-pools demo', method: req.method, url: req.url, headers: req.headers })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, server }
}

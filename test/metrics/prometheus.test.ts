// Issue 17: a real Prometheus server (Debian package `prometheus`, installed
// by .ci/run) started on loopback with a temporary config and data folder
// scrapes the /metrics of a running `serve`, and its HTTP API returns the
// pools' series with the values the gateway's traffic produced.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { cliBuilt, startServe } from '../helpers/cli.js'
import { startDaemon } from '../helpers/daemon.js'
import { get, upstream } from '../helpers/loopback.js'
import { need, PROMETHEUS } from '../helpers/metrics.js'
import { accepts } from '../helpers/net.js'
import { tempDir } from '../helpers/package.js'

t.setTimeout(120_000)
// Scrapes every 500 ms: the series show up within a few seconds on an idle machine, this allows for a busy one.
const SERIES_DEADLINE_MS = 60_000
const REQUESTS = 3

interface QueryResult { metric: Record<string, string>, value: [number, string] }

t.test('Prometheus scrapes serve\'s /metrics and its API returns the pool series', { skip: cliBuilt ? false : 'dist/ is not built (npm test builds it first)' }, async (t) => {
  const executable = need(PROMETHEUS)
  const origin = await upstream(t)
  const gw = await startServe(t, '--origin', origin.origin, '--metrics-port', '0')
  const metricsUrl = new URL(gw.lines.map((l) => /^Prometheus metrics at (\S+)$/.exec(l.msg ?? '')?.[1]).find((u) => u !== undefined)!)
  for (let i = 0; i < REQUESTS; i++) t.equal((await get(`${gw.url}/hello`)).statusCode, 200)

  const dir = tempDir(t, 'fastify-http-pools-prometheus-')
  const prometheus = await startDaemon(t, {
    name: 'prometheus',
    executable,
    prepare: (port) => {
      writeFileSync(join(dir, 'prometheus.yml'), [
        'global:',
        '  scrape_interval: 500ms',
        '  scrape_timeout: 500ms',
        'scrape_configs:',
        '  - job_name: gateway',
        `    metrics_path: ${metricsUrl.pathname}`,
        '    static_configs:',
        `      - targets: ['${metricsUrl.host}']`,
        ''
      ].join('\n'))
      return [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, `data-${port}`)}`, `--web.listen-address=127.0.0.1:${port}`]
    },
    // Ready once its storage is open: the query API answers 503 before.
    ready: async (port) => await accepts(port) && (await get(`http://127.0.0.1:${port}/-/ready`).catch(() => undefined))?.statusCode === 200
  })
  t.teardown(async () => { await prometheus.kill() })

  const query = async (promql: string): Promise<QueryResult[]> => {
    const res = await request(`http://127.0.0.1:${prometheus.port}/api/v1/query?query=${encodeURIComponent(promql)}`)
    const body = await res.body.json() as { status: string, data?: { result: QueryResult[] } }
    return body.status === 'success' ? body.data!.result : []
  }
  // Polled until the value the traffic made shows, for at most SERIES_DEADLINE_MS.
  let requests: QueryResult[] = []
  const deadline = Date.now() + SERIES_DEADLINE_MS
  while (Date.now() < deadline) {
    requests = await query('http_client_pool_upstream_requests_total{job="gateway",pool="default"}')
    if (requests[0]?.value[1] === String(REQUESTS)) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(requests.length, 1, `the series of pool "default" (${JSON.stringify(requests)})`)
  t.equal(requests[0]?.value[1], String(REQUESTS), 'the requests the gateway forwarded')
  const ok = await query('http_client_pool_upstream_responses_total{job="gateway",pool="default",class="2xx"}')
  t.same(ok.map((r) => [r.metric.origin, r.value[1]]), [[origin.origin, String(REQUESTS)]], 'per origin, by status class')
  const latency = await query('http_client_pool_upstream_header_latency_seconds_count{job="gateway",pool="default"}')
  t.same(latency.map((r) => r.value[1]), [String(REQUESTS)], 'the latency histogram')
  const pools = await query('count by (pool) (http_client_pool_connections_max{job="gateway"})')
  t.same(pools.map((r) => r.metric.pool).sort(), ['banana', 'default'], 'every pool of the bundled config')
  await prometheus.kill()
})

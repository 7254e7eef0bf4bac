import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** A command line the CLI cannot run: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {
  constructor (message: string, readonly command?: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** A gateway that cannot start (config, pools of --route, the port): printed, exit 1. */
export class StartError extends Error {
  constructor (message: string, readonly details: readonly string[] = []) {
    super(message)
    this.name = 'StartError'
  }
}

/** The package's folder: the same from dist/ (as installed) and from the sources (tests). */
export const PACKAGE_ROOT = (() => {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`)
  }
})()

export const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version

export const CHECK_SYNOPSIS = 'Usage: fastify-http-pools check FILE'
export const SERVE_SYNOPSIS = `Usage: fastify-http-pools serve [--config FILE] [--origin URL] [--port N] [--host H]
                                [--metrics-port N] [--route PREFIX=POOL[@UPSTREAM]]...`

export const CHECK_USAGE = `${CHECK_SYNOPSIS}

Validates an http-connection-pool.cfg.xml file and prints every pool with its
effective settings (defaults filled in, secrets as ***). Exit status: 0 when
valid, 1 with every error (FILE:LINE: pool "ID": ATTRIBUTE: MESSAGE) when not.

Options:
  -h, --help   print this help`

export const SERVE_USAGE = `${SERVE_SYNOPSIS}

Runs a gateway: each --route prefix forwards through its pool, everything else
through the default pool to the origin. Every method and body is forwarded
unchanged (any content type, streamed).

Options:
  --config FILE              pools config (default: the bundled example config)
  --origin URL               origin service, http(s)://host[:port] (default: a
                             bundled demo origin that echoes what reaches it)
  --port N                   port to listen on (default: 3000; 0: any free port)
  --host H                   address to listen on (default: 127.0.0.1)
  --metrics-port N           port of the Prometheus /metrics endpoint, on --host
                             (default: --port + 1; 0: any free port)
  --route PREFIX=POOL[@UPSTREAM]
                             forward PREFIX and everything under it through
                             pool POOL, to UPSTREAM (http(s)://host[:port]) if
                             given, else to the origin; repeatable
  -h, --help                 print this help

Exit status: 1 with the reason when the gateway cannot start (invalid config,
a --route pool that the config lacks, port in use); 2 for a bad command line.`

export const SYNOPSIS = `Usage: fastify-http-pools check FILE
       fastify-http-pools serve [--config FILE] [--origin URL] [--port N] [--host H]
                                [--metrics-port N] [--route PREFIX=POOL[@UPSTREAM]]...`

export const USAGE = `${SYNOPSIS}
       fastify-http-pools --help | --version

Commands:
  check FILE      validate a config file and print its effective settings
  serve           run a gateway (serve --help: its options)

Options:
  -h, --help      print this help (after a command: that command's help)
  -v, --version   print the version`

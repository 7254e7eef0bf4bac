#!/usr/bin/env node
import { check } from './check.js'
import { parseServeArgs, serve } from './serve.js'

const USAGE = `Usage:
  fastify-http-pools check FILE
  fastify-http-pools serve [--config FILE] [--origin URL] [--port N] [--route PREFIX=POOL[@UPSTREAM]]...`

// `check FILE | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw err })

const io = { out: (l: string) => process.stdout.write(l + '\n'), err: (l: string) => process.stderr.write(l + '\n') }

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === 'check' && rest.length === 1) return await check(rest[0]!, io)
  if (command === 'serve') {
    const { app } = await serve(parseServeArgs(rest))
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => { app.close().then(() => { process.exitCode = 0 }, () => { process.exitCode = 1 }) })
    }
    return 0
  }
  io.err(USAGE)
  return 2
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  io.err(err.message)
  process.exitCode = 1
})

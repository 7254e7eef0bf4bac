#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { check } from './check.js'
import { parseServeArgs, serve } from './serve.js'
import { CHECK_SYNOPSIS, CHECK_USAGE, SERVE_SYNOPSIS, SERVE_USAGE, StartError, SYNOPSIS, USAGE, UsageError, VERSION } from './usage.js'

// `check FILE | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw err })

const io = { out: (l: string) => process.stdout.write(l + '\n'), err: (l: string) => process.stderr.write(l + '\n') }

const wantsHelp = (args: string[]): boolean => args.some((a) => a === '--help' || a === '-h')

/** `check FILE`: one file, no option but --help. */
function checkFile (args: string[]): string {
  let positionals: string[]
  try {
    ({ positionals } = parseArgs({ args, options: {}, strict: true, allowPositionals: true }))
  } catch (err) {
    throw new UsageError((err as Error).message.split('. ')[0]!, 'check')
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'check needs the FILE to validate' : `check takes one FILE, not ${positionals.length}`, 'check')
  return positionals[0]!
}

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === '--version' || command === '-v') {
    io.out(VERSION)
    return 0
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE)
    return 0
  }
  if (command === undefined) throw new UsageError('a command is needed')
  if (command === 'check') {
    if (wantsHelp(rest)) { io.out(CHECK_USAGE); return 0 }
    return await check(checkFile(rest), io)
  }
  if (command === 'serve') {
    if (wantsHelp(rest)) { io.out(SERVE_USAGE); return 0 }
    const { app } = await serve(parseServeArgs(rest))
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => { app.close().then(() => { process.exitCode = 0 }, () => { process.exitCode = 1 }) })
    }
    return 0
  }
  throw new UsageError(command.startsWith('-') ? `unknown option ${command}` : `unknown command "${command}"`)
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  if (err instanceof UsageError) {
    const command = err.command === undefined ? '' : ` ${err.command}`
    io.err(`fastify-http-pools${command}: ${err.message}`)
    io.err(err.command === 'check' ? CHECK_SYNOPSIS : err.command === 'serve' ? SERVE_SYNOPSIS : SYNOPSIS)
    io.err(`Run 'fastify-http-pools${command} --help' for more.`)
    process.exitCode = 2
    return
  }
  if (err instanceof StartError) {
    io.err(`fastify-http-pools serve: cannot start: ${err.message}`)
    for (const line of err.details) io.err(`  ${line}`)
  } else {
    io.err(`fastify-http-pools: ${err.message}`)
  }
  process.exitCode = 1
})

// A port on 127.0.0.1 where a connect can only time out, for the connect
// timeout tests.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { Worker } from 'node:worker_threads'
import type { Teardown } from './tap.js'

export interface BlackHole {
  port: number
  origin: string
  /** Stops the listener and frees its port (also done at teardown). */
  close: () => Promise<void>
}

/**
 * A port on 127.0.0.1 where a connect can only time out: a listener whose
 * accept queue is full, so the kernel drops every further SYN.
 *
 * A listener in this thread would not do: Node accepts every connection as
 * soon as its event loop runs. The listener lives in a worker thread that
 * blocks in Atomics.wait and so never accepts; raw connections fill its queue
 * first. Its backlog is 1, not 0: Node reads `backlog: 0` as "the default"
 * (511), so that queue would never fill (checked on Linux: with backlog 1 the
 * third connect hangs). Filling stops at the first connect that does not
 * complete within 250 ms.
 */
export async function blackHole (t: Teardown): Promise<BlackHole> {
  const flag = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const server = require('node:net').createServer()
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      parentPort.postMessage(server.address().port)
      Atomics.wait(workerData, 0, 0, 120000)
      process.exit(0)
    })`, { eval: true, workerData: flag })
  const fillers: Socket[] = []
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      for (const s of fillers) s.destroy()
      Atomics.store(flag, 0, 1)
      Atomics.notify(flag, 0)
      if (worker.threadId !== -1) await once(worker, 'exit')
    })()
    await closing
  }
  t.teardown(close)
  const [port] = await once(worker, 'message') as [number]
  for (let i = 0; i < 16; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    fillers.push(socket)
    const connected = await Promise.race([
      once(socket, 'connect').then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 250))
    ])
    if (!connected) return { port, origin: `http://127.0.0.1:${port}`, close }
  }
  await close()
  throw new Error('could not fill the accept queue of the black-hole listener')
}

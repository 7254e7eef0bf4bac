import { Readable } from 'node:stream'

/**
 * A response body made of already-read chunks, optionally followed by the rest
 * of a live stream. Each caller of a shared response gets its own, so every one
 * can read it (json(), text(), arrayBuffer(), bytes(), async iteration).
 */
export class ReplayBody extends Readable {
  private readonly source: AsyncIterator<Buffer> | undefined
  private index = 0

  constructor (private readonly chunks: readonly Buffer[], rest?: AsyncIterable<Buffer>) {
    super()
    this.source = rest?.[Symbol.asyncIterator]()
  }

  override _read (): void {
    if (this.index < this.chunks.length) {
      this.push(this.chunks[this.index++])
      return
    }
    if (this.source === undefined) {
      this.push(null)
      return
    }
    this.source.next().then(({ done, value }) => { this.push(done ? null : value) }, (err: Error) => this.destroy(err))
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    // Stop the live rest too, so its socket is released.
    if (this.source?.return) this.source.return().then(() => callback(err), () => callback(err))
    else callback(err)
  }

  async bytes (): Promise<Uint8Array> {
    const parts: Buffer[] = []
    for await (const chunk of this) parts.push(chunk as Buffer)
    return Buffer.concat(parts)
  }

  async arrayBuffer (): Promise<ArrayBuffer> {
    const b = await this.bytes()
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer
  }

  async text (): Promise<string> { return Buffer.from(await this.bytes()).toString('utf8') }
  async json (): Promise<unknown> { return JSON.parse(await this.text()) }

  /** Discards the body (undici's name for it). */
  async dump (): Promise<void> { this.destroy() }
}

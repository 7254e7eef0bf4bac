import { Dispatcher } from 'undici'

/**
 * undici's close/destroy signatures (optional error, optional callback, else a
 * promise) written once: subclasses say what closing and destroying mean.
 */
export abstract class ClosableDispatcher extends Dispatcher {
  /** Lets in-flight requests finish, then closes every socket. */
  protected abstract closeAll (): Promise<void>
  /** Closes every socket now, failing what is in flight with `err`. */
  protected abstract destroyAll (err: Error | null): Promise<void>

  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    return settle(this.closeAll(), callback)
  }

  override destroy (): Promise<void>
  override destroy (err: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (err: Error | null, callback: () => void): void
  override destroy (errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const err = typeof errOrCallback === 'function' ? null : errOrCallback ?? null
    return settle(this.destroyAll(err), typeof errOrCallback === 'function' ? errOrCallback : callback)
  }
}

function settle (done: Promise<void>, callback: (() => void) | undefined): Promise<void> | void {
  if (callback === undefined) return done
  done.then(callback, callback)
}

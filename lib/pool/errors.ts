import { errors } from 'undici'

/** A response broke one of the pool's limits (header count, line length). */
export class ResponseLimitError extends errors.UndiciError {
  constructor (message: string, readonly limit: 'http.connection.max-header-count' | 'http.connection.max-line-length') {
    super(message)
    this.name = 'ResponseLimitError'
    this.code = 'FST_HTTP_POOLS_RESPONSE_LIMIT'
  }
}

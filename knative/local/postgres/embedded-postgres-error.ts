/**
 * What stops the embedded PostgreSQL, said in one line: the cause (from the server's own log when
 * it has one) and what to do. The runner prints `message` as it is, without a stack.
 */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError'
}

/**
 * What the server needs from a database, whichever engine is behind it.
 * @typedef {(sql: string, params?: unknown[]) => Promise<{rows: any[], rowCount: number}>} Query
 * @typedef {object} Db
 * @property {"pglite"|"postgres"} kind
 * @property {Query} query one statement outside any request transaction
 * @property {(sql: string) => Promise<void>} exec a script of several statements, no parameters
 * @property {<T>(fn: (q: Query) => Promise<T>) => Promise<T>} transaction commits if fn resolves, rolls back if it throws
 * @property {(channel: string, onPayload: (payload: string) => void, onLost?: () => void) => Promise<() => Promise<void>>} listen
 *   LISTEN on a channel (a fixed identifier) until the returned function is called; onLost: the session ended
 *   by itself (notifications may have been missed; listen again)
 * @property {() => Promise<void>} close
 */
export {};

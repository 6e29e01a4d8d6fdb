/** Counters for benchmarks: GET /__admin/stats. */
export class Stats {
  constructor() {
    this.reset();
  }
  reset() {
    this.requests = { total: 0, byMethod: {}, byTable: {} };
    this.bytesIn = 0;
    this.bytesOut = 0;
    this.rowsWritten = {};
    this.rpcCalls = 0;
  }
  /** @param {string} method @param {string|null} table the table, or `rpc/<fn>` */
  request(method, table) {
    this.requests.total++;
    this.requests.byMethod[method] = (this.requests.byMethod[method] ?? 0) + 1;
    if (table) this.requests.byTable[table] = (this.requests.byTable[table] ?? 0) + 1;
  }
  /** Rows a committed write changed, from the database's affected-row counts. */
  rows(table, n) {
    if (n > 0) this.rowsWritten[table] = (this.rowsWritten[table] ?? 0) + n;
  }
  toJSON() {
    const { requests, bytesIn, bytesOut, rowsWritten, rpcCalls } = this;
    return { requests, bytesIn, bytesOut, rowsWritten, rpcCalls };
  }
}

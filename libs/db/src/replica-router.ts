/**
 * ReplicaRouter: where a catalog query runs. Writes and transactions: the primary, and each returns a
 * ConsistencyToken (the GTID it produced). Reads: a replica in rotation (the replicas ReplicaMonitor keeps
 * healthy and within the lag limit), the one with the fewest reads in flight from this process first and
 * round-robin among equals: plain round-robin hands a slow replica (busier, throttled, a colder cache) every
 * other read, its queue grows until most callers wait on it, and two replicas serve twice the slower one's rate
 * instead of the sum of both (measured on equally capped nodes: one of them ran saturated, the other 60 % busy).
 *
 * Versus TypeORM's built-in replication (a random replica, nothing more):
 *  - read-your-writes: a read carrying a token goes to a replica already known to have applied it, else
 *    waits up to REPLICA_WAIT_MS on one replica connection (MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET)
 *    and reads on that same connection, else reads the primary;
 *  - lag awareness and failover: replicas out of rotation get no reads; a read that fails at the
 *    connection level is retried once on another node and the replica is taken out at once;
 *  - no replica usable: the primary (REPLICA_FALLBACK=primary, default) or a 503 (=503), never a pool error.
 * The SQL stays in the repositories: the router only hands them a DataSource/EntityManager to run on.
 * Trade-off: token reads may pay a wait or land on the primary; with every replica lagging the primary
 * takes all reads, which is the point (correct, slower) but is also how a primary gets overloaded.
 *
 * Tokens come from clients, so they are checked before they can cost anything (acceptToken): a token
 * ahead of the primary's own GTID position names writes that never happened, and would make every read
 * wait out REPLICA_WAIT_MS and then load the primary. The check uses positions already known (a replica
 * seen past the token, the monitor's last primary sample); only a token newer than those costs one
 * `SELECT @@gtid_binlog_pos`, shared by every request that arrives while it runs.
 */
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { Counter } from 'prom-client';
import { ApiError, type Logger, type Metrics } from '#libs/core';
import type { DbNode, DbNodes } from './db-nodes.js';
import type { ReplicaMonitor } from './replica-monitor.js';
import { ConsistencyScope, ConsistencyToken, TokenAheadOfPrimary } from './consistency-token.js';

export type Runner = DataSource | EntityManager;
export type ReadFallback = 'primary' | '503';

export interface ReplicaRouterOptions {
  /** How long a token read may wait on a replica before reading the primary. */
  waitMs?: number;
  /** No replica usable: read the primary, or answer 503. */
  fallback?: ReadFallback;
  metrics?: Metrics;
  logger?: Pick<Logger, 'warn'>;
  /** A known primary position older than this is not trusted to vouch for a token (default 1000 ms). */
  positionMaxAgeMs?: number;
}

const NODE_FAILURE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST',
  'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_QUERY_INTERRUPTED', 'ER_CONNECTION_KILLED', 'POOL_CLOSED',
]);

/**
 * A write that met a primary being replaced: read-only (ER_OPTION_PREVENTS_STATEMENT, errno 1290, the old
 * primary during a switchover) or a node failure (the primary is dead). Retryable once the monitor follows the
 * new primary; a write whose connection was lost may or may not have committed, so retries must be idempotent.
 */
export function isPrimaryChanging(err: unknown): boolean {
  const e = ((err as any)?.driverError ?? err) as { errno?: number } | undefined;
  return e?.errno === 1290 || isNodeFailure(err);
}

/** A failure of the node (connection refused/lost, server shutting down), not of the SQL: worth another node. */
export function isNodeFailure(err: unknown): boolean {
  const e = ((err as any)?.driverError ?? err) as { code?: string; fatal?: boolean; message?: string } | undefined;
  if (!e) return false;
  return e.fatal === true || NODE_FAILURE_CODES.has(e.code ?? '') || /pool is closed|closed state|connection lost|no answer within|not connected/i.test(e.message ?? '');
}

export class ReplicaRouter {
  readonly waitMs: number;
  readonly fallback: ReadFallback;
  private next = 0;
  /** Reads in flight per node (this process): the least loaded replica is tried first. */
  private readonly inFlight = new Map<string, number>();
  protected readonly reads?: Counter<'node'>;
  private readonly fallbacks?: Counter<'reason'>;
  protected readonly tokenReads?: Counter<'result'>;
  protected readonly retries?: Counter<'node'>;
  private readonly waits?: Counter;
  private readonly tokenChecks?: Counter<'result'>;
  protected readonly primaryUnavailable?: Counter;
  /** The primary's position as this router last read it. */
  private known: { pos: string; at: number } | null = null;
  private refreshing: Promise<string> | null = null;
  private queued: Promise<string> | null = null;

  constructor(
    readonly nodes: DbNodes,
    /** null: every configured replica is assumed healthy (what a naive router does; used to isolate the token in tests). */
    readonly monitor: ReplicaMonitor | null,
    protected readonly opts: ReplicaRouterOptions = {},
  ) {
    this.waitMs = opts.waitMs ?? 50;
    this.fallback = opts.fallback ?? 'primary';
    const m = opts.metrics;
    this.reads = m?.counter('db_reads_total', 'Catalog reads by the node that served them', ['node']);
    this.fallbacks = m?.counter('db_read_fallbacks_total', 'Reads that could not use a replica, by reason', ['reason']);
    this.tokenReads = m?.counter('db_token_reads_total', 'Reads with a consistency token: covered (known applied), waited (applied within the wait), timeout (read the primary), sync_wait (Galera: read with wsrep_sync_wait=1)', ['result']);
    this.retries = m?.counter('db_read_retries_total', 'Reads retried on another node after a node failure', ['node']);
    this.waits = m?.counter('db_token_waits_total', 'Token reads that waited on a replica for the token (MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET)');
    this.primaryUnavailable = m?.counter('db_write_primary_unavailable_total', 'Writes answered 503 because the catalog primary was read-only or unreachable (switchover/failover)');
    this.tokenChecks = m?.counter('db_token_checks_total', 'Client tokens checked against known positions: replica, cached, reread (primary asked), refused (ahead of the primary), unverified (primary unreachable)', ['result']);
  }

  /**
   * A client's X-Consistency-Token: parsed (InvalidConsistencyToken when malformed) and checked against the
   * primary (TokenAheadOfPrimary when it names writes the primary has not made), before any read waits for it.
   */
  async acceptToken(raw: string): Promise<ConsistencyToken> {
    const dialect = this.nodes.primary.dialect;
    const token = ConsistencyToken.parse(raw, dialect);
    if (!(await this.isReachable(token))) {
      throw new TokenAheadOfPrimary('X-Consistency-Token is ahead of the primary: send back a token returned by a write of this API');
    }
    return token;
  }

  /** Has the primary made every write this token names? Cheapest evidence first; asks the primary at most once. */
  async isReachable(token: ConsistencyToken): Promise<boolean> {
    const dialect = this.nodes.primary.dialect;
    // A replica applies only what the primary wrote: one seen past the token vouches for it.
    for (const r of this.nodes.replicas) {
      if (token.isCoveredBy(r.dialect, this.monitor?.health(r.name)?.appliedGtid ?? '')) return this.checked('replica', true);
    }
    const known = this.knownPosition();
    if (known && Date.now() - known.at <= (this.opts.positionMaxAgeMs ?? 1000) && token.isCoveredBy(dialect, known.pos)) return this.checked('cached', true);
    let pos: string;
    try {
      pos = await this.freshPrimaryPosition();
    } catch {
      return this.checked('unverified', true); // the primary cannot tell; the read path copes with a dead primary
    }
    return token.isCoveredBy(dialect, pos) ? this.checked('reread', true) : this.checked('refused', false);
  }

  private checked(result: string, ok: boolean): boolean {
    this.tokenChecks?.labels(result).inc();
    return ok;
  }

  private knownPosition(): { pos: string; at: number } | null {
    const sampled = this.monitor?.primaryPosition();
    if (!sampled) return this.known;
    return !this.known || sampled.at > this.known.at ? sampled : this.known;
  }

  /**
   * The primary's position read by a query that started after this call: it covers every write a client
   * could have seen before sending its token. Concurrent callers share one query in flight plus one queued
   * behind it, so a flood of forged tokens costs the primary one cheap query per round trip, not one each.
   */
  private freshPrimaryPosition(): Promise<string> {
    if (!this.refreshing) return this.startRefresh();
    this.queued ??= this.refreshing
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.queued = null;
        return this.startRefresh();
      });
    return this.queued;
  }

  private startRefresh(): Promise<string> {
    const at = Date.now();
    const p = this.nodes.primary.dialect.gtidPosition(this.primary).then((pos) => {
      if (!this.known || at > this.known.at) this.known = { pos, at };
      return pos;
    });
    this.refreshing = p;
    p.then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      if (this.refreshing === p) this.refreshing = null;
    });
    return p;
  }

  get primary(): DataSource {
    return this.nodes.primary.ds;
  }

  /** Replicas that may serve reads, rotated for round-robin. */
  rotation(): DbNode[] {
    const list = (this.monitor ? this.monitor.inRotation() : this.nodes.replicas).filter((n) => n.ds.isInitialized);
    if (list.length <= 1) return list;
    const k = this.next++ % list.length;
    this.next %= 1 << 30;
    const busy = (n: DbNode) => this.inFlight.get(n.name) ?? 0;
    // Array.prototype.sort is stable: replicas with equal reads in flight keep the round-robin order.
    return [...list.slice(k), ...list.slice(0, k)].sort((a, b) => busy(a) - busy(b));
  }

  /** Run one read on `node`, counted as in flight while it runs (rotation() prefers the least busy node). */
  protected async counted<T>(node: DbNode, run: () => Promise<T>): Promise<T> {
    this.inFlight.set(node.name, (this.inFlight.get(node.name) ?? 0) + 1);
    try {
      return await run();
    } finally {
      this.inFlight.set(node.name, (this.inFlight.get(node.name) ?? 1) - 1);
    }
  }

  /**
   * Run a read. `token` defaults to the current request's (ConsistencyScope); pass null to read without one.
   * `fn` gets the DataSource/EntityManager to query and the node it runs on.
   */
  async read<T>(fn: (on: Runner, node: DbNode) => Promise<T>, token: ConsistencyToken | null | undefined = ConsistencyScope.current()?.token): Promise<T> {
    const candidates = this.rotation();
    if (token && candidates.length > 1) {
      // Least work first: a replica the monitor has already seen past the token needs no wait.
      const i = candidates.findIndex((n) => token.isCoveredBy(n.dialect, this.monitor?.health(n.name)?.appliedGtid ?? ''));
      if (i > 0) candidates.unshift(...candidates.splice(i, 1));
    }
    if (this.nodes.replicas.length === 0) return this.onPrimary(fn, 'none_configured'); // a deliberate topology, not a failure
    if (!candidates.length) return this.noReplica(fn, 'no_replica');
    // One retry on another replica, then the fallback: a dead replica costs a retry, never a failed read.
    for (const node of candidates.slice(0, 2)) {
      try {
        return await this.counted(node, () => this.onReplica(node, fn, token ?? null));
      } catch (e) {
        if (!isNodeFailure(e)) throw e;
        this.monitor?.reportFailure(node, e);
        this.opts.logger?.warn({ replica: node.name, err: (e as Error).message }, 'replica read failed; retrying on another node');
        this.retries?.labels(node.name).inc();
      }
    }
    return this.noReplica(fn, 'replica_error');
  }

  /** Run writes on one primary connection; returns fn's value and the token of the last write. */
  async write<T>(fn: (on: EntityManager) => Promise<T>): Promise<{ value: T; token: ConsistencyToken | null }> {
    return this.onPrimaryConnection(fn, false);
  }

  /** Like write, inside one transaction (committed before the token is read). */
  async transaction<T>(fn: (on: EntityManager) => Promise<T>): Promise<{ value: T; token: ConsistencyToken | null }> {
    return this.onPrimaryConnection(fn, true);
  }

  /**
   * A write made outside write()/transaction() (e.g. DDL on the DDL account's own pool): `position` is the
   * primary's GTID position read after it, so this request's later reads and the caller's next reads (the
   * token it answers with and remembers) see it, like any other write.
   */
  noteWrite(position: string): void {
    const token = ConsistencyToken.of(position);
    const scope = ConsistencyScope.current();
    if (!scope || !token) return;
    const dialect = this.nodes.primary.dialect;
    scope.written = ConsistencyToken.merge(dialect, scope.written, token);
    scope.token = ConsistencyToken.merge(dialect, scope.token, token);
  }

  protected async onPrimaryConnection<T>(fn: (on: EntityManager) => Promise<T>, tx: boolean) {
    try {
      return await this.onPrimaryConnectionOnce(fn, tx);
    } catch (e) {
      if (!isPrimaryChanging(e)) throw e;
      // The primary went read-only (switchover) or away (failover): ask the monitor now rather than at its next tick.
      void this.monitor?.check();
      this.primaryUnavailable?.inc();
      const err = new ApiError(503, 'unavailable', 'the catalog primary is changing (switchover or failover); retry shortly', undefined, { cause: e });
      err.headers = { 'retry-after': '1' };
      throw err;
    }
  }

  protected async onPrimaryConnectionOnce<T>(fn: (on: EntityManager) => Promise<T>, tx: boolean) {
    const qr = this.primary.createQueryRunner();
    const dialect = this.nodes.primary.dialect;
    // The OK packet of each write carries its GTID when the server tracks it (MariaDB session_track_system_variables
    // with last_gtid, MySQL session_track_gtids=OWN_GTID): remember it and save a round trip.
    let tracked = '';
    const query = qr.query.bind(qr);
    qr.query = (async (...args: Parameters<QueryRunner['query']>) => {
      const res = await query(...args);
      const gtid = dialect.gtidFromResult(res);
      if (gtid) tracked = gtid;
      return res;
    }) as QueryRunner['query'];
    try {
      await qr.connect();
      let value: T;
      if (tx) {
        await qr.startTransaction();
        try {
          value = await fn(qr.manager);
          await qr.commitTransaction();
        } catch (e) {
          await qr.rollbackTransaction().catch(() => undefined);
          throw e;
        }
      } else {
        value = await fn(qr.manager);
      }
      // Untracked: ask on the same connection, right after the write (MariaDB @@last_gtid; MySQL gtid_executed).
      const token = ConsistencyToken.of(tracked || (await dialect.lastWriteGtid(qr)));
      const scope = ConsistencyScope.current();
      if (scope && token) {
        scope.written = ConsistencyToken.merge(dialect, scope.written, token);
        scope.token = ConsistencyToken.merge(dialect, scope.token, token); // later reads in this request see the write
      }
      return { value, token };
    } finally {
      await qr.release();
    }
  }

  private async onReplica<T>(node: DbNode, fn: (on: Runner, node: DbNode) => Promise<T>, token: ConsistencyToken | null): Promise<T> {
    if (!token) {
      const v = await fn(node.ds, node);
      this.reads?.labels(node.name).inc();
      return v;
    }
    if (token.isCoveredBy(node.dialect, this.monitor?.health(node.name)?.appliedGtid ?? '')) {
      this.tokenReads?.labels('covered').inc();
      const v = await fn(node.ds, node);
      this.reads?.labels(node.name).inc();
      return v;
    }
    // Wait for the token on one pinned connection, then read on that same connection.
    let qr: QueryRunner | null = node.ds.createQueryRunner();
    try {
      await qr.connect();
      this.waits?.inc();
      if (await node.dialect.waitForGtid(qr, token.gtid, this.waitMs)) {
        this.tokenReads?.labels('waited').inc();
        const v = await fn(qr.manager, node);
        this.reads?.labels(node.name).inc();
        return v;
      }
      await qr.release();
      qr = null;
      this.tokenReads?.labels('timeout').inc();
      return await this.onPrimary(fn, 'token_timeout');
    } finally {
      await qr?.release();
    }
  }

  private async noReplica<T>(fn: (on: Runner, node: DbNode) => Promise<T>, reason: string): Promise<T> {
    if (this.fallback === '503') {
      this.fallbacks?.labels(`${reason}_503`).inc();
      throw new ApiError(503, 'unavailable', 'no database replica can serve reads right now; retry shortly');
    }
    return this.onPrimary(fn, reason);
  }

  private async onPrimary<T>(fn: (on: Runner, node: DbNode) => Promise<T>, reason: string): Promise<T> {
    this.fallbacks?.labels(reason).inc();
    let v: T;
    try {
      v = await fn(this.primary, this.nodes.primary);
    } catch (e) {
      if (!isNodeFailure(e)) throw e;
      void this.monitor?.check(); // a dead primary: the monitor may already know the promoted one
      const err = new ApiError(503, 'unavailable', 'the catalog primary is unreachable (failover in progress?); retry shortly', undefined, { cause: e });
      err.headers = { 'retry-after': '1' };
      throw err;
    }
    this.reads?.labels(this.nodes.primary.name).inc();
    return v;
  }
}

/**
 * The catalog on a Galera cluster (DB_CATALOG_MODE=galera): clustering instead of replication.
 *
 * Every node of a Galera cluster takes writes, and a commit returns only after the whole group has certified
 * it (virtually synchronous), so there is no primary to promote and no acknowledged write a surviving node
 * lacks. What stays asynchronous is *applying*: a node may not have applied a certified write yet when a read
 * arrives, so a read that must see the caller's writes asks the node to catch up first (wsrep_sync_wait=1:
 * wait until everything committed cluster-wide when the read arrived is applied here) instead of waiting for
 * a GTID as ReplicaRouter does.
 *
 * GaleraMonitor (the ReplicaMonitor the services get): every interval it reads each node's wsrep status; a
 * node serves reads while it is Synced in the Primary component; when the node taking writes stops being
 * that, writes move to the next one that is (DbNodes.setPrimary, as a promotion would).
 * GaleraRouter (the ReplicaRouter the services get): writes to one node at a time — two nodes writing the
 * same row would conflict at certification, and the loser gets a deadlock error (1213) the app must retry;
 * reads over every Synced node (fewest in flight first, round-robin among equals), the writer included. A write that could not even start on a dead
 * node (connection refused, node not ready: nothing ran) is retried at once on the next live node; a write
 * whose connection broke mid-way may or may not have committed, so it answers a retryable 503, like the
 * replicated catalog during a failover.
 * Trade-off: every commit pays a group round trip (on one box ~0; across regions the WAN RTT, see the lab);
 * a killed node stalls every commit until the group evicts it (evs.suspect_timeout); reads with a token pay a
 * sync wait on every read, not only when the node is behind.
 */
import type { EntityManager, QueryRunner } from 'typeorm';
import { ApiError } from '#libs/core';
import type { DbNode } from './db-nodes.js';
import { ConsistencyScope, ConsistencyToken } from './consistency-token.js';
import { ReplicaMonitor, type ReplicaHealth } from './replica-monitor.js';
import { isNodeFailure, ReplicaRouter, type Runner } from './replica-router.js';
import { withTimeout } from '#libs/core';
import type { Queryable } from './dialect.js';

/** Every Galera-specific statement the API runs. */
export const GaleraSql = {
  status: "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_ready', 'wsrep_last_committed')",
  /** Reads on this session first wait until the node has applied everything committed cluster-wide. */
  syncWaitOn: 'SET SESSION wsrep_sync_wait = 1',
  syncWaitOff: 'SET SESSION wsrep_sync_wait = 0',
} as const;

/** The wsrep status of one node, as /health shows it. */
export interface WsrepState {
  clusterSize: number;
  /** Synced | Donor/Desynced | Joining | Joined | Initialized … */
  localStateComment: string;
  /** Primary (part of the quorum) | non-Primary | Disconnected */
  clusterStatus: string;
  ready: boolean;
  lastCommitted: number;
}

export async function readWsrep(conn: Queryable): Promise<WsrepState> {
  const rows: Array<{ Variable_name: string; Value: string }> = await conn.query(GaleraSql.status);
  const v = Object.fromEntries(rows.map((r) => [r.Variable_name.toLowerCase(), r.Value]));
  if (v.wsrep_cluster_status === undefined) throw new Error('not a Galera node (no wsrep status)');
  return {
    clusterSize: Number(v.wsrep_cluster_size ?? 0),
    localStateComment: v.wsrep_local_state_comment ?? '',
    clusterStatus: v.wsrep_cluster_status ?? '',
    ready: v.wsrep_ready === 'ON',
    lastCommitted: Number(v.wsrep_last_committed ?? -1),
  };
}

/** A node that may serve reads and take writes: Synced, in the Primary component, ready. */
export const isServing = (w: WsrepState | undefined): boolean => !!w && w.ready && w.clusterStatus === 'Primary' && w.localStateComment === 'Synced';

/** ER_UNKNOWN_COM_ERROR (1047): "WSREP has not yet prepared node for application use": refused before anything ran. */
const NOT_READY = 1047;
const errnoOf = (e: unknown) => (((e as any)?.driverError ?? e) as { errno?: number; code?: string } | undefined);

export class GaleraMonitor extends ReplicaMonitor {
  private readonly wsrep = new Map<string, WsrepState>();

  /** The node's wsrep status at the latest check (undefined: unreachable). */
  wsrepOf(name: string): WsrepState | undefined {
    return this.wsrep.get(name);
  }

  /** Every node of the cluster: all of them serve reads. */
  override snapshot(): ReplicaHealth[] {
    return this.nodes.catalog.map((n) => ({ ...this.state.get(n.name)! }));
  }

  override inRotation(): DbNode[] {
    return this.nodes.catalog.filter((n) => this.state.get(n.name)?.inRotation);
  }

  private galeraRound: Promise<void> | null = null;
  override check(): Promise<void> {
    this.galeraRound ??= this.galeraCheck().finally(() => (this.galeraRound = null));
    return this.galeraRound;
  }

  override async stop(): Promise<void> {
    await this.galeraRound?.catch(() => undefined);
    await super.stop();
  }

  private async galeraCheck(): Promise<void> {
    await Promise.all(this.nodes.catalog.map((n) => this.checkNode(n)));
    this.followWriter();
  }

  private async checkNode(node: DbNode): Promise<void> {
    const h = this.state.get(node.name)!;
    h.checkedAt = Date.now();
    try {
      const w = await withTimeout(readWsrep(await this.probe(node)), this.probeTimeoutMs, `${node.name} wsrep status`);
      this.wsrep.set(node.name, w);
      const reason = isServing(w)
        ? !(await this.nodes.ensureConnected(node)) ? 'request pool not connected yet' : ''
        : `not serving: ${w.localStateComment}, ${w.clusterStatus} component${w.ready ? '' : ', not ready'}`;
      Object.assign(h, { ioRunning: isServing(w), sqlRunning: isServing(w), lagMs: isServing(w) ? 0 : null, gtidBehind: null });
      this.transition(h, reason === '', reason);
    } catch (e) {
      this.wsrep.delete(node.name);
      Object.assign(h, { lagMs: null, ioRunning: false, sqlRunning: false });
      this.transition(h, false, `down: ${(e as Error).message}`);
      const ds = this.probes.get(node.name);
      this.probes.delete(node.name);
      if (ds?.isInitialized) void ds.destroy().catch(() => undefined);
    }
    this.opts.metrics?.gauge('db_galera_cluster_size', 'wsrep_cluster_size as each catalog node reports it (0 unreachable)', ['node']).labels(node.name).set(this.wsrep.get(node.name)?.clusterSize ?? 0);
  }

  /** The writer is no longer serving: writes move to the next serving node in configuration order. */
  private followWriter(): void {
    const current = this.nodes.primary;
    if (isServing(this.wsrep.get(current.name))) return;
    this.moveWriter(current);
  }

  /** Move writes off `from` (dead or not serving) to the next serving node; false when there is none. */
  moveWriter(from: DbNode): boolean {
    if (this.nodes.primary !== from) return true; // someone already moved it
    const order = this.nodes.catalog;
    const i = order.indexOf(from);
    const next = [...order.slice(i + 1), ...order.slice(0, i)].find((n) => isServing(this.wsrep.get(n.name)) && n.ds.isInitialized);
    if (!next) return false;
    this.previousPrimary = from.name;
    this.nodes.setPrimary(next);
    const h = this.state.get(from.name);
    if (h) this.transition(h, false, 'writes moved away: not serving');
    this.opts.metrics?.counter('db_primary_changes_total', 'Changes of the writable catalog node seen by the monitor', ['to']).labels(next.name).inc();
    this.opts.logger?.warn({ from: from.name, to: next.name }, `Galera: writes move from ${from.name} to ${next.name}`);
    for (const l of this.primaryListeners) l(next, from);
    return true;
  }
}

export class GaleraRouter extends ReplicaRouter {
  private get galera(): GaleraMonitor | null {
    return this.monitor instanceof GaleraMonitor ? this.monitor : null;
  }

  /**
   * A token only says "this caller wrote": its value is never waited for (wsrep_sync_wait waits for the whole
   * cluster's commits, whatever the token names), so a forged one costs one sync wait and nothing more.
   */
  override async isReachable(_token: ConsistencyToken): Promise<boolean> {
    return true;
  }

  override async read<T>(fn: (on: Runner, node: DbNode) => Promise<T>, token: ConsistencyToken | null | undefined = ConsistencyScope.current()?.token): Promise<T> {
    const candidates = this.rotation();
    // Every node is down or out of quorum as far as the monitor knows: try the writer anyway (it may be back).
    if (!candidates.length) candidates.push(this.nodes.primary);
    for (const node of candidates.slice(0, 2)) {
      try {
        const v = await this.counted(node, () => (token ? this.syncedRead(node, fn) : fn(node.ds, node)));
        this.reads?.labels(node.name).inc();
        return v;
      } catch (e) {
        if (!isNodeFailure(e) && errnoOf(e)?.errno !== NOT_READY) throw e;
        this.monitor?.reportFailure(node, e);
        this.opts.logger?.warn({ node: node.name, err: (e as Error).message }, 'Galera read failed; retrying on another node');
        this.retries?.labels(node.name).inc();
      }
    }
    const err = new ApiError(503, 'unavailable', 'no Galera node can serve reads right now; retry shortly');
    err.headers = { 'retry-after': '1' };
    throw err;
  }

  /** Read-your-writes: on one pinned connection, wsrep_sync_wait=1 for the read, reset before the connection goes back. */
  private async syncedRead<T>(node: DbNode, fn: (on: Runner, node: DbNode) => Promise<T>): Promise<T> {
    const qr = node.ds.createQueryRunner();
    try {
      await qr.connect();
      await qr.query(GaleraSql.syncWaitOn);
      this.tokenReads?.labels('sync_wait').inc();
      const v = await fn(qr.manager, node);
      await qr.query(GaleraSql.syncWaitOff);
      return v;
    } catch (e) {
      // A connection whose session state is unknown never goes back to the pool with sync wait on.
      await (qr as QueryRunner & { databaseConnection?: { destroy?: () => void } }).databaseConnection?.destroy?.();
      throw e;
    } finally {
      await qr.release();
    }
  }

  /** Writes on the current writer; a write that could not start there (nothing ran) moves to the next node once. */
  protected override async onPrimaryConnection<T>(fn: (on: EntityManager) => Promise<T>, tx: boolean): Promise<{ value: T; token: ConsistencyToken | null }> {
    for (let attempt = 1; ; attempt++) {
      const writer = this.nodes.primary;
      try {
        return await this.onPrimaryConnectionOnce(fn, tx);
      } catch (e) {
        const err = errnoOf(e);
        const nothingRan = err?.code === 'ECONNREFUSED' || err?.errno === NOT_READY || (e as Error)?.message === 'Pool is closed.';
        if (!nothingRan && !isNodeFailure(e)) throw e; // SQL errors, and 1213 (a certification conflict: retryOnDeadlock)
        this.monitor?.reportFailure(writer, e);
        const moved = this.galera?.moveWriter(writer) ?? false;
        if (nothingRan && moved && attempt < this.nodes.catalog.length) continue;
        void this.monitor?.check();
        this.primaryUnavailable?.inc();
        const out = new ApiError(503, 'unavailable', 'the Galera node taking writes failed mid-write; retry shortly', undefined, { cause: e });
        out.headers = { 'retry-after': '1' };
        throw out;
      }
    }
  }
}

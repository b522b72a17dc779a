/**
 * ReplicaMonitor: which replicas may serve reads right now (the part TypeORM's random replica lacks).
 *
 * Every ~500 ms, on connections of its own (a saturated request pool must never look like a dead
 * replica), it reads the primary's GTID position and each replica's status: both replication threads
 * running, Seconds_Behind_Master, the applied GTID position, transactions behind, and the lag in ms.
 * The lag in ms is estimated from GTID positions, not from Seconds_Behind_Master (whole seconds, and
 * NULL or 0 in the cases that matter): the monitor keeps a short history of (time, primary position)
 * samples; a replica whose applied position lacks a sample's transactions is at least `now - sample time`
 * behind. Resolution is one interval (500 ms), enough for a 1000 ms limit, and it needs no heartbeat
 * writes. A replica that is down, has a stopped thread or lags over the limit leaves rotation; it comes
 * back on the first healthy check. ReplicaRouter also reports read errors here, which takes a replica out
 * at once, before the next check. Transitions are logged and counted.
 *
 * Roles come from the servers, not only from the configuration: each round also reads @@global.read_only of
 * every catalog node. When the primary is no longer writable (read_only after a switchover, or dead) and
 * exactly one catalog node is writable and replicates from nobody, that node is the primary now
 * (DbNodes.setPrimary): writes follow it and the old primary becomes a replica like the others, checked in
 * the same round. Two writable nodes (split brain) change nothing and are logged; no writable node means
 * writes answer a retryable 503 (ReplicaRouter) until one appears. The monitor never promotes anything:
 * the operator does (`npm run stack -- promote|failover`, or the orchestrator of a real deployment).
 */
import type { DataSource } from 'typeorm';
import type { Logger, Metrics } from '#libs/core';
import { dataSourceFor, type DbNode, type DbNodes } from './db-nodes.js';
import type { ReplicaStatus } from './dialect.js';
import { withTimeout } from '#libs/core';

export interface ReplicaHealth {
  name: string;
  inRotation: boolean;
  /** Why it is out ('' when in). */
  reason: string;
  ioRunning: boolean;
  sqlRunning: boolean;
  lagMs: number | null;
  secondsBehind: number | null;
  gtidBehind: number | null;
  appliedGtid: string;
  checkedAt: number;
  /** Since when it has been in its current state (ms epoch). */
  since: number;
}

export interface ReplicaMonitorOptions {
  intervalMs?: number;
  maxLagMs?: number;
  /** A check that takes longer counts as down. */
  probeTimeoutMs?: number;
  logger?: Pick<Logger, 'info' | 'warn'>;
  metrics?: Metrics;
}

const HISTORY_MS = 60_000;

export class ReplicaMonitor {
  readonly intervalMs: number;
  readonly maxLagMs: number;
  protected readonly probeTimeoutMs: number;
  protected readonly state = new Map<string, ReplicaHealth>();
  protected readonly probes = new Map<string, DataSource>();
  private history: Array<{ t: number; pos: string }> = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  protected listeners: Array<(h: ReplicaHealth) => void> = [];

  constructor(
    protected readonly nodes: DbNodes,
    protected readonly opts: ReplicaMonitorOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 500;
    this.maxLagMs = opts.maxLagMs ?? 1000;
    this.probeTimeoutMs = opts.probeTimeoutMs ?? Math.max(1000, this.intervalMs * 2);
    const now = Date.now();
    // Until the first check, replicas are in rotation: a fresh API must not send every read to the primary.
    for (const r of nodes.catalog) {
      this.state.set(r.name, { name: r.name, inRotation: true, reason: '', ioRunning: true, sqlRunning: true, lagMs: null, secondsBehind: null, gtidBehind: null, appliedGtid: '', checkedAt: 0, since: now });
    }
  }

  /** Start checking every intervalMs; resolves after the first check so callers start with real state. */
  async start(): Promise<void> {
    if (this.timer) return;
    await this.check();
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
    await Promise.all([...this.probes.values()].map((ds) => (ds.isInitialized ? ds.destroy().catch(() => undefined) : undefined)));
    this.probes.clear();
  }

  onTransition(fn: (h: ReplicaHealth) => void): void {
    this.listeners.push(fn);
  }

  health(name: string): ReplicaHealth | undefined {
    return this.state.get(name);
  }

  snapshot(): ReplicaHealth[] {
    return this.nodes.replicas.map((r) => ({ ...this.state.get(r.name)! }));
  }

  /** The primary's GTID position at the latest check (what its writes had reached then), if known. */
  primaryPosition(): { pos: string; at: number } | undefined {
    const s = this.history.at(-1);
    return s && { pos: s.pos, at: s.t };
  }

  /** Replicas that may serve reads now. */
  inRotation(): DbNode[] {
    return this.nodes.replicas.filter((r) => this.state.get(r.name)?.inRotation);
  }

  /** Called by the router when a read on `node` failed at the connection level: out now, the next check decides. */
  reportFailure(node: DbNode, err: unknown): void {
    const h = this.state.get(node.name);
    if (h?.inRotation) this.transition(h, false, `read failed: ${(err as Error)?.message ?? String(err)}`);
  }

  /** A replica's replication status, read with the monitor account (health checks). */
  async replicaStatus(node: DbNode): Promise<ReplicaStatus> {
    return withTimeout(node.dialect.replicaStatus(await this.probe(node)), this.probeTimeoutMs, `${node.name} status`);
  }

  /** One round of checks (also callable from tests). Concurrent calls share the round in flight. */
  check(): Promise<void> {
    this.running ??= this.round().finally(() => (this.running = null));
    return this.running;
  }

  protected async probe(node: DbNode): Promise<DataSource> {
    let ds = this.probes.get(node.name);
    if (!ds) {
      // The monitor account: replication status only, no application table.
      ds = dataSourceFor(node.monitorUrl, 1, { connectTimeout: this.probeTimeoutMs });
      this.probes.set(node.name, ds);
    }
    if (!ds.isInitialized) await withTimeout(ds.initialize(), this.probeTimeoutMs, `${node.name} connect`);
    return ds;
  }

  /** The node writes went to before the latest change of primary (undefined: none seen). */
  previousPrimary?: string;

  private async round(): Promise<void> {
    const t = Date.now();
    await this.followPrimary();
    try {
      const primary = await this.probe(this.nodes.primary);
      const pos = await withTimeout(this.nodes.primary.dialect.gtidPosition(primary), this.probeTimeoutMs, 'primary position');
      this.history.push({ t, pos });
      while (this.history.length > 2 && this.history[0].t < t - HISTORY_MS) this.history.shift();
    } catch {
      // Without the primary's position, lag is unknown; thread state still decides below.
    }
    await Promise.all(this.nodes.replicas.map((r) => this.checkReplica(r)));
  }

  /** Which catalog node is writable now; a change of primary is applied to DbNodes (see the header). */
  private async followPrimary(): Promise<void> {
    if (this.nodes.catalog.length < 2) return;
    // Steady state: the primary is still writable, so there is nothing to discover. One cheap read per round
    // on the primary only: every node's read_only and replication status each round cost the capped
    // benchmark nodes a measurable share of their CPU (replica-reads fell from 3.2x to 1.07x).
    const current = this.nodes.primary;
    try {
      const [row] = await withTimeout((await this.probe(current)).query('SELECT @@global.read_only AS ro'), this.probeTimeoutMs, `${current.name} read_only`);
      if (Number(row.ro) === 0) return;
    } catch {
      /* unreachable: look for the node that took over */
    }
    const writable = await Promise.all(
      this.nodes.catalog.map(async (node) => {
        try {
          const ds = await this.probe(node);
          const [row] = await withTimeout(ds.query('SELECT @@global.read_only AS ro'), this.probeTimeoutMs, `${node.name} read_only`);
          if (Number(row.ro) !== 0) return false;
          return !(await withTimeout(node.dialect.replicaStatus(ds), this.probeTimeoutMs, `${node.name} status`)).configured;
        } catch {
          return false; // down or unreachable: not a primary anyone can write to
        }
      }),
    );
    const candidates = this.nodes.catalog.filter((_, i) => writable[i]);
    if (candidates.includes(current)) return;
    if (candidates.length > 1) {
      this.opts.logger?.warn({ nodes: candidates.map((n) => n.name) }, 'more than one writable catalog node: keeping the current primary');
      return;
    }
    const next = candidates[0];
    if (!next) return; // mid-switchover or primary dead: writes get 503 until a node is promoted
    this.previousPrimary = current.name;
    this.nodes.setPrimary(next);
    const demoted = this.state.get(current.name)!;
    this.transition(demoted, false, 'demoted from primary; not checked as a replica yet');
    this.opts.metrics?.counter('db_primary_changes_total', 'Changes of the writable catalog node seen by the monitor', ['to']).labels(next.name).inc();
    this.opts.logger?.warn({ from: current.name, to: next.name }, `catalog primary is now ${next.name} (was ${current.name})`);
    for (const l of this.primaryListeners) l(next, current);
  }

  protected primaryListeners: Array<(now: DbNode, was: DbNode) => void> = [];
  /** Called after DbNodes.setPrimary, with the new and the old primary. */
  onPrimaryChange(fn: (now: DbNode, was: DbNode) => void): void {
    this.primaryListeners.push(fn);
  }

  private async checkReplica(node: DbNode): Promise<void> {
    const h = this.state.get(node.name)!;
    const now = Date.now();
    try {
      const ds = await this.probe(node);
      const st = await withTimeout(node.dialect.replicaStatus(ds), this.probeTimeoutMs, `${node.name} status`);
      const latest = this.history.at(-1);
      const lagMs = latest ? this.lagMs(node, st.appliedGtid, now) : null;
      Object.assign(h, {
        ioRunning: st.ioRunning,
        sqlRunning: st.sqlRunning,
        secondsBehind: st.secondsBehind,
        appliedGtid: st.appliedGtid,
        gtidBehind: latest ? node.dialect.gtidBehind(latest.pos, st.appliedGtid) : null,
        lagMs,
        checkedAt: now,
      });
      const reason = !st.configured
        ? 'not a replica'
        : !st.ioRunning || !st.sqlRunning
          ? `replication stopped (IO=${st.ioRunning ? 'Yes' : 'No'} SQL=${st.sqlRunning ? 'Yes' : 'No'})${st.lastError ? ': ' + st.lastError : ''}`
          : lagMs !== null && lagMs > this.maxLagMs
            ? `lag ${lagMs} ms over the limit of ${this.maxLagMs} ms`
            : !(await this.nodes.ensureConnected(node))
              ? 'request pool not connected yet'
              : '';
      this.transition(h, reason === '', reason);
    } catch (e) {
      Object.assign(h, { checkedAt: now, lagMs: null, gtidBehind: null });
      this.transition(h, false, `down: ${(e as Error).message}`);
      // Drop the probe connection so the next round reconnects (a restarted replica gets a fresh one).
      const ds = this.probes.get(node.name);
      this.probes.delete(node.name);
      if (ds?.isInitialized) void ds.destroy().catch(() => undefined);
    }
    this.publish(h);
  }

  /** Lag in ms from GTID positions: how long ago the oldest transaction this replica lacks was on the primary. */
  private lagMs(node: DbNode, applied: string, now: number): number {
    for (const s of this.history) {
      if (!node.dialect.gtidCovers(applied, s.pos)) return Math.max(0, now - s.t);
    }
    return 0;
  }

  protected transition(h: ReplicaHealth, inRotation: boolean, reason: string): void {
    const changed = h.inRotation !== inRotation;
    h.reason = reason;
    if (!changed) return;
    h.inRotation = inRotation;
    h.since = Date.now();
    this.opts.metrics?.counter('db_replica_transitions_total', 'Replica rotation changes', ['node', 'to']).labels(h.name, inRotation ? 'in' : 'out').inc();
    const log = this.opts.logger;
    if (inRotation) log?.info({ replica: h.name, lagMs: h.lagMs }, `replica ${h.name} back in rotation`);
    else log?.warn({ replica: h.name, reason }, `replica ${h.name} out of rotation: ${reason}`);
    for (const l of this.listeners) l({ ...h });
  }

  private publish(h: ReplicaHealth): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.gauge('db_replica_in_rotation', '1 when the replica serves reads', ['node']).labels(h.name).set(h.inRotation ? 1 : 0);
    m.gauge('db_replica_lag_ms', 'Replica lag estimated from GTID positions (-1 unknown)', ['node']).labels(h.name).set(h.lagMs ?? -1);
    m.gauge('db_replica_gtid_behind', 'Transactions the replica has not applied yet (-1 unknown)', ['node']).labels(h.name).set(h.gtidBehind ?? -1);
  }
}

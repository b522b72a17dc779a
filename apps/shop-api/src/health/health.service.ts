/**
 * Liveness and readiness per node of the topology. The API is `down` (503) only when a node it cannot
 * work without is unreachable (catalog primary, an order shard); a lost replica or Redis makes it
 * `degraded`: reads fall back to the primary, cache reads to the database.
 * Two views: anyone gets each node's status (up/degraded/down, lag within the limit or not, a stable
 * reason code); only an admin gets the details (driver error text, host and port, GTID positions,
 * latencies), which map the network and the replication state for an attacker.
 */
import { Injectable } from '@nestjs/common';
import { DbNodes, GaleraMonitor, isServing, readWsrep, ReplicaMonitor, type DbNode } from '#libs/db';
import { connectedTo, maskUrl, RedisClients, Settings, withTimeout, type RedisEndpoint } from '#libs/core';
import type { Redis } from 'ioredis';

export interface NodeHealth {
  name: string;
  role: string;
  ready: boolean;
  /** Admin view only: where the node is. */
  host?: string;
  port?: number;
  latencyMs?: number;
  lagSeconds?: number | null;
  detail?: string;
  /** Replicas: ReplicaMonitor's view (does it serve reads, why not, lag from GTID positions). */
  routing?: { inRotation: boolean; reason: string; lagMs: number | null; gtidBehind: number | null; appliedGtid?: string; since: string };
  /** Galera nodes (DB_CATALOG_MODE=galera): the node's own view of the cluster, and whether it takes the API's writes now. */
  wsrep?: GaleraView;
}

export interface GaleraView {
  writer: boolean;
  wsrep_cluster_size: number;
  wsrep_local_state_comment: string;
  wsrep_cluster_status: string;
}

/** What anyone may see about a node. */
export interface PublicNodeHealth {
  name: string;
  role: string;
  status: 'up' | 'degraded' | 'down';
  ready: boolean;
  lagSeconds?: number | null;
  /** Replicas: within MAX_REPLICA_LAG_MS (null: unknown). */
  lagOk?: boolean | null;
  routing?: { inRotation: boolean; reason: string; since: string };
  /** Galera nodes: cluster size and state as the node reports them (no addresses or positions). */
  wsrep?: GaleraView;
}

export interface PublicHealthReport {
  status: HealthReport['status'];
  nodes: PublicNodeHealth[];
}

/** ReplicaMonitor's reasons are sentences with driver text in them; the public view gets a stable code. */
export function reasonCode(reason: string): string {
  if (!reason) return '';
  if (reason.startsWith('not a replica')) return 'not_a_replica';
  if (reason.startsWith('replication stopped')) return 'replication_stopped';
  if (reason.startsWith('lag ')) return 'lagging';
  if (reason.startsWith('request pool')) return 'not_connected';
  if (reason.startsWith('down')) return 'unreachable';
  if (reason.startsWith('read failed')) return 'read_failed';
  if (reason.startsWith('not serving') || reason.startsWith('writes moved')) return 'not_synced';
  return 'out_of_rotation';
}

export function publicReport(report: HealthReport, maxLagMs: number): PublicHealthReport {
  return {
    status: report.status,
    nodes: report.nodes.map((n) => {
      const lagOk = n.role !== 'replica' ? undefined : n.routing?.lagMs == null ? null : n.routing.lagMs <= maxLagMs;
      const status = !n.ready ? 'down' : n.routing && !n.routing.inRotation ? 'degraded' : 'up';
      return {
        name: n.name,
        role: n.role,
        status,
        ready: n.ready,
        ...(n.role === 'replica' ? { lagSeconds: n.lagSeconds ?? null, lagOk } : {}),
        ...(n.routing ? { routing: { inRotation: n.routing.inRotation, reason: reasonCode(n.routing.reason), since: n.routing.since } } : {}),
        ...(n.wsrep ? { wsrep: n.wsrep } : {}),
      };
    }),
  };
}

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  nodes: NodeHealth[];
}

const TIMEOUT_MS = 1500;

@Injectable()
export class HealthService {
  constructor(
    private readonly db: DbNodes,
    private readonly redis: RedisClients,
    private readonly replicas: ReplicaMonitor,
    private readonly config: Settings,
  ) {}

  /** The report anyone may read. */
  async publicReport(): Promise<PublicHealthReport> {
    return publicReport(await this.report(), this.config.replication.maxLagMs);
  }

  private routing(name: string): NodeHealth['routing'] {
    const h = this.replicas.health(name);
    return h && { inRotation: h.inRotation, reason: h.reason, lagMs: h.lagMs, gtidBehind: h.gtidBehind, appliedGtid: h.appliedGtid, since: new Date(h.since).toISOString() };
  }

  /** A Galera node: its own wsrep status (read now), the monitor's routing view, and whether it takes writes. */
  private async galeraNode(node: DbNode): Promise<NodeHealth> {
    const t0 = performance.now();
    const base = { name: node.name, role: 'galera', host: node.url.host, port: node.url.port, routing: this.routing(node.name) };
    try {
      if (!(await this.db.ensureConnected(node))) return { ...base, ready: false, detail: 'not connected' };
      const w = await withTimeout(readWsrep(node.ds), TIMEOUT_MS, node.name);
      const wsrep = { writer: node === this.db.primary, wsrep_cluster_size: w.clusterSize, wsrep_local_state_comment: w.localStateComment, wsrep_cluster_status: w.clusterStatus };
      return { ...base, ready: isServing(w), latencyMs: Math.round((performance.now() - t0) * 10) / 10, wsrep, detail: `${w.localStateComment}, ${w.clusterStatus} component of ${w.clusterSize}` };
    } catch (e) {
      return { ...base, ready: false, detail: (e as Error).message };
    }
  }

  private async dbNode(node: DbNode): Promise<NodeHealth> {
    if (this.replicas instanceof GaleraMonitor && this.db.catalog.includes(node)) return this.galeraNode(node);
    const t0 = performance.now();
    const base = { name: node.name, role: node.role, host: node.url.host, port: node.url.port, ...(node.role === 'replica' ? { routing: this.routing(node.name) } : {}) };
    try {
      if (!(await this.db.ensureConnected(node))) return { ...base, ready: false, detail: 'not connected' };
      await withTimeout(node.ds.query('SELECT 1'), TIMEOUT_MS, node.name);
      const latencyMs = Math.round((performance.now() - t0) * 10) / 10;
      if (node.role !== 'replica') return { ...base, ready: true, latencyMs };
      const st = await withTimeout(this.replicas.replicaStatus(node), TIMEOUT_MS, node.name);
      const running = st.configured && st.ioRunning && st.sqlRunning;
      return {
        ...base,
        ready: running,
        latencyMs,
        lagSeconds: st.secondsBehind,
        detail: running ? 'replicating' : st.configured ? `replication stopped${st.lastError ? ': ' + st.lastError : ''}` : 'not a replica',
      };
    } catch (e) {
      return { ...base, ready: false, detail: (e as Error).message };
    }
  }

  private async redisNode(name: string, client: Redis, endpoint: RedisEndpoint): Promise<NodeHealth> {
    const t0 = performance.now();
    const url = endpoint.url;
    const where = (() => {
      // Through Sentinel the node is whichever master the sentinels named (after a failover: the promoted replica).
      if (endpoint.sentinels.length) return { host: connectedTo(client)?.host ?? `sentinel:${endpoint.masterName}`, port: connectedTo(client)?.port };
      try {
        const u = new URL(url);
        return { host: u.hostname, port: Number(u.port || 6379) };
      } catch {
        return { host: maskUrl(url) };
      }
    })();
    try {
      if (client.status !== 'ready') return { name, role: 'redis', ...where, ready: false, detail: client.status };
      await withTimeout(client.ping(), TIMEOUT_MS, 'redis');
      return { name, role: 'redis', ...where, ready: true, latencyMs: Math.round((performance.now() - t0) * 10) / 10 };
    } catch (e) {
      return { name, role: 'redis', ...where, ready: false, detail: (e as Error).message };
    }
  }

  async report(): Promise<HealthReport> {
    const nodes = await Promise.all([
      ...this.db.all().map((n) => this.dbNode(n)),
      this.redisNode('redis-cache', this.redis.cache, this.config.redis.cache),
      this.redisNode('redis-queue', this.redis.queue, this.config.redis.queue),
    ]);
    const required = nodes.filter((n) => n.role === 'primary' || n.role === 'shard');
    // Galera: the catalog is down only when no node serves (writes move to any Synced node).
    const galera = nodes.filter((n) => n.role === 'galera');
    const catalogDown = galera.length > 0 && !galera.some((n) => n.ready);
    const status = catalogDown || required.some((n) => !n.ready) ? 'down' : nodes.some((n) => !n.ready) ? 'degraded' : 'ok';
    return { status, nodes };
  }
}

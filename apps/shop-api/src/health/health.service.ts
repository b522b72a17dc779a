/**
 * Liveness and readiness per node of the topology. The API is `down` (503) only when a node it cannot
 * work without is unreachable (catalog primary, an order shard); a lost replica or Redis makes it
 * `degraded`: reads fall back to the primary, cache reads to the database.
 */
import { Injectable } from '@nestjs/common';
import { DbNodes, ReplicaMonitor, type DbNode } from '#libs/db';
import { RedisClients } from '#libs/core';
import type { Redis } from 'ioredis';

export interface NodeHealth {
  name: string;
  role: string;
  ready: boolean;
  latencyMs?: number;
  lagSeconds?: number | null;
  detail?: string;
  /** Replicas: ReplicaMonitor's view (does it serve reads, why not, lag from GTID positions). */
  routing?: { inRotation: boolean; reason: string; lagMs: number | null; gtidBehind: number | null; since: string };
}

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  nodes: NodeHealth[];
}

const TIMEOUT_MS = 1500;

function withTimeout<T>(p: Promise<T>, ms = TIMEOUT_MS): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

@Injectable()
export class HealthService {
  constructor(
    private readonly db: DbNodes,
    private readonly redis: RedisClients,
    private readonly replicas: ReplicaMonitor,
  ) {}

  private routing(name: string): NodeHealth['routing'] {
    const h = this.replicas.health(name);
    return h && { inRotation: h.inRotation, reason: h.reason, lagMs: h.lagMs, gtidBehind: h.gtidBehind, since: new Date(h.since).toISOString() };
  }

  private async dbNode(node: DbNode): Promise<NodeHealth> {
    const t0 = performance.now();
    const base = { name: node.name, role: node.role, ...(node.role === 'replica' ? { routing: this.routing(node.name) } : {}) };
    try {
      if (!(await this.db.ensureConnected(node))) return { ...base, ready: false, detail: 'not connected' };
      await withTimeout(node.ds.query('SELECT 1'));
      const latencyMs = Math.round((performance.now() - t0) * 10) / 10;
      if (node.role !== 'replica') return { ...base, ready: true, latencyMs };
      const st = await withTimeout(this.replicas.replicaStatus(node));
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

  private async redisNode(name: string, client: Redis): Promise<NodeHealth> {
    const t0 = performance.now();
    try {
      if (client.status !== 'ready') return { name, role: 'redis', ready: false, detail: client.status };
      await withTimeout(client.ping());
      return { name, role: 'redis', ready: true, latencyMs: Math.round((performance.now() - t0) * 10) / 10 };
    } catch (e) {
      return { name, role: 'redis', ready: false, detail: (e as Error).message };
    }
  }

  async report(): Promise<HealthReport> {
    const nodes = await Promise.all([
      ...this.db.all().map((n) => this.dbNode(n)),
      this.redisNode('redis-cache', this.redis.cache),
      this.redisNode('redis-queue', this.redis.queue),
    ]);
    const required = nodes.filter((n) => n.role === 'primary' || n.role === 'shard');
    const status = required.some((n) => !n.ready) ? 'down' : nodes.some((n) => !n.ready) ? 'degraded' : 'ok';
    return { status, nodes };
  }
}

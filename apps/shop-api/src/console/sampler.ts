/**
 * ConsoleSampler: one snapshot of the whole topology per tick, for /admin/console/stream. Everything in it
 * comes from what /health and /metrics already expose (HealthService.report(), the Metrics registry), plus
 * the servers' own counters (each database node's SHOW GLOBAL STATUS, BullMQ's view of redis-queue):
 * no second source of truth. Rates are deltas between two ticks; one timer serves every open stream and
 * runs only while someone listens.
 */
import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { Metrics, Settings } from '#libs/core';
import { DbNodes, OrderShardRouter, type DbNode } from '#libs/db';
import { HealthService, type NodeHealth } from '../health/health.service.js';
import { CatalogCache } from '../catalog/product-cache.provider.js';
import { ShortsService } from '../shorts/shorts.service.js';
import { byLabel, latencyBuckets, samples, total, windowStats } from './counters.js';

/** A node as /health's admin view has it (HealthService.report()), plus the server's own counters. */
export interface ConsoleNode extends Pick<NodeHealth, 'name' | 'role' | 'ready' | 'host' | 'latencyMs' | 'detail' | 'lagSeconds'> {
  port?: number;
  /** Replicas: in or out of ReplicaMonitor's rotation, and why. */
  routing?: { inRotation: boolean; reason: string; lagMs: number | null };
  /** Database nodes: the server's own counters per second (SHOW GLOBAL STATUS Com_select, Questions). */
  selectsPerS?: number | null;
  queriesPerS?: number | null;
  /** Shards: share of the 1024 buckets. */
  buckets?: number;
  bucketShare?: number;
}

export interface ConsoleSnapshot {
  at: number;
  status: string;
  nodes: ConsoleNode[];
  api: { instanceId: string; pid: number; uptimeS: number; rssMb: number; cacheMode: string; configuredCacheMode: string };
  workers: { name: string; addr: string; ageS: number }[];
  queue: { name: string; waiting: number; active: number; delayed: number; failed: number; completed: number } | null;
  /** /metrics' orders_partition_rows: rows per monthly partition of the orders table, per shard. */
  partitionRows: Record<string, Record<string, number>>;
  /** /metrics' shorts_jobs_finished_last_hour: jobs/hour by final status. */
  jobsLastHour: { done: number | null; failed: number | null };
  rates: {
    intervalS: number;
    routes: Record<string, { rps: number; p99Ms: number | null }>;
    cacheHits: Record<string, number>;
    cacheMisses: number;
    dbLoads: number;
    coalesced: number;
    leaseWaits: number;
    dbReads: Record<string, number>;
    ordersByShard: Record<string, number>;
  };
}

interface Raw {
  at: number;
  buckets: Record<string, Record<string, number>>;
  hits: Record<string, number>;
  misses: number;
  loads: number;
  coalesced: number;
  leaseWaits: number;
  dbReads: Record<string, number>;
  orders: Record<string, number>;
  status: Record<string, { selects: number; queries: number }>;
}

const perS = (now: number, prev: number | undefined, s: number) => (prev === undefined || s <= 0 ? 0 : Math.max(0, Math.round(((now - prev) / s) * 10) / 10));
const perSAll = (now: Record<string, number>, prev: Record<string, number> | undefined, s: number) =>
  Object.fromEntries(Object.entries(now).map(([k, v]) => [k, perS(v, prev?.[k] ?? (prev ? 0 : undefined), s)]));

@Injectable()
export class ConsoleSampler implements BeforeApplicationShutdown {
  private prev: Raw | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(s: ConsoleSnapshot) => void>();
  private readonly closers = new Set<() => void>();
  private ticking = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly health: HealthService,
    private readonly metrics: Metrics,
    private readonly db: DbNodes,
    private readonly shards: OrderShardRouter,
    private readonly cache: CatalogCache,
    private readonly shorts: ShortsService,
    private readonly config: Settings,
  ) {}

  /**
   * Calls `fn` with a snapshot every CONSOLE_STREAM_INTERVAL_MS until the returned function is called;
   * `end` is called at shutdown (an open stream would otherwise hold the HTTP server's close forever).
   */
  subscribe(fn: (s: ConsoleSnapshot) => void, end: () => void = () => undefined): () => void {
    this.listeners.add(fn);
    this.closers.add(end);
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.config.console.streamIntervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(fn);
      this.closers.delete(end);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  private async tick(): Promise<void> {
    if (this.ticking) return; // a slow round (a node timing out) skips a tick rather than piling up
    this.ticking = true;
    try {
      const s = await this.snapshot(true);
      for (const fn of this.listeners) fn(s);
    } catch {
      /* the next tick tries again */
    } finally {
      this.ticking = false;
    }
  }

  private async serverStatus(node: DbNode): Promise<{ selects: number; queries: number } | null> {
    if (!node.ds.isInitialized) return null;
    try {
      const rows = (await node.ds.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Questions')")) as { Variable_name: string; Value: string }[];
      const get = (n: string) => Number(rows.find((r) => r.Variable_name === n)?.Value ?? NaN);
      return { selects: get('Com_select'), queries: get('Questions') };
    } catch {
      return null;
    }
  }

  private async raw(): Promise<Raw> {
    const m = this.metrics;
    const status: Raw['status'] = {};
    await Promise.all(
      this.db.all().map(async (n) => {
        const s = await this.serverStatus(n);
        if (s) status[n.name] = s;
      }),
    );
    return {
      at: Date.now(),
      buckets: await latencyBuckets(m),
      hits: await byLabel(m, 'cache_hits_total', 'tier', { cache: 'product' }),
      misses: await total(m, 'cache_misses_total', { cache: 'product' }),
      loads: await total(m, 'cache_db_loads_total', { cache: 'product' }),
      coalesced: await total(m, 'cache_coalesced_total', { cache: 'product' }),
      leaseWaits: await total(m, 'cache_lease_waits_total', { cache: 'product' }),
      dbReads: await byLabel(m, 'db_reads_total', 'node'),
      orders: await byLabel(m, 'orders_created_total', 'shard'),
      status,
    };
  }

  private async workers(): Promise<{ workers: ConsoleSnapshot['workers']; queue: ConsoleSnapshot['queue'] }> {
    const q = this.shorts.queue;
    try {
      const [workers, counts] = await Promise.all([q.getWorkers(), q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed')]);
      return {
        workers: workers.map((w) => ({ name: String(w.name ?? ''), addr: String(w.addr ?? ''), ageS: Number(w.age ?? 0) })),
        queue: { name: q.name, waiting: counts.waiting ?? 0, active: counts.active ?? 0, delayed: counts.delayed ?? 0, failed: counts.failed ?? 0, completed: counts.completed ?? 0 },
      };
    } catch {
      return { workers: [], queue: null };
    }
  }

  /** The gauges TableGauges puts on /metrics (read from the same registry GET /metrics prints). */
  private async tables(): Promise<Pick<ConsoleSnapshot, 'partitionRows' | 'jobsLastHour'>> {
    const partitionRows: ConsoleSnapshot['partitionRows'] = {};
    for (const s of await samples(this.metrics, 'orders_partition_rows')) (partitionRows[String(s.labels.shard)] ??= {})[String(s.labels.partition)] = s.value;
    const jobs = await samples(this.metrics, 'shorts_jobs_finished_last_hour');
    const of = (status: string) => jobs.find((s) => s.labels.status === status)?.value ?? null;
    return { partitionRows, jobsLastHour: { done: of('DONE'), failed: of('FAILED') } };
  }

  /**
   * The topology with its rates since the previous tick (zero before the first). Only the stream's ticks
   * (`advance`) move the window, so a GET /admin/console/snapshot never shortens an open stream's interval.
   */
  async snapshot(advance = false): Promise<ConsoleSnapshot> {
    const [report, raw, w, buckets, tables] = await Promise.all([this.health.report(), this.raw(), this.workers(), this.shards.bucketCounts().catch(() => [] as number[]), this.tables()]);
    const prev = this.prev;
    if (advance || !this.prev) this.prev = raw;
    const s = prev ? (raw.at - prev.at) / 1000 : 0;
    const totalBuckets = buckets.reduce((a, b) => a + b, 0);
    const nodes: ConsoleNode[] = report.nodes.map((n: NodeHealth) => {
      const st = raw.status[n.name];
      const ps = prev?.status[n.name];
      const shardIndex = n.role === 'shard' ? this.db.shards.findIndex((x) => x.name === n.name) : -1;
      return {
        name: n.name,
        role: n.role,
        ready: n.ready,
        host: n.host,
        port: n.port === undefined ? undefined : Number(n.port),
        latencyMs: n.latencyMs,
        detail: n.detail,
        ...(n.role === 'replica' ? { lagSeconds: n.lagSeconds ?? null } : {}),
        ...(n.routing ? { routing: { inRotation: n.routing.inRotation, reason: n.routing.reason, lagMs: n.routing.lagMs } } : {}),
        ...(n.role === 'redis' ? {} : { selectsPerS: st && ps ? perS(st.selects, ps.selects, s) : null, queriesPerS: st && ps ? perS(st.queries, ps.queries, s) : null }),
        ...(shardIndex >= 0 ? { buckets: buckets[shardIndex] ?? 0, bucketShare: totalBuckets ? Math.round((1000 * (buckets[shardIndex] ?? 0)) / totalBuckets) / 1000 : 0 } : {}),
      };
    });
    const routes: ConsoleSnapshot['rates']['routes'] = {};
    for (const [family, b] of Object.entries(raw.buckets)) {
      const st = windowStats(prev?.buckets[family], b);
      if (prev) routes[family] = { rps: s > 0 ? Math.round((st.count / s) * 10) / 10 : 0, p99Ms: st.p99Ms };
    }
    return {
      at: raw.at,
      status: report.status,
      nodes,
      api: {
        instanceId: this.cache.instanceId,
        pid: process.pid,
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
        rssMb: Math.round(process.memoryUsage.rss() / 1048576),
        cacheMode: this.cache.products.opts.mode,
        configuredCacheMode: this.config.cache.mode,
      },
      workers: w.workers,
      queue: w.queue,
      ...tables,
      rates: {
        intervalS: Math.round(s * 100) / 100,
        routes,
        cacheHits: perSAll(raw.hits, prev?.hits, s),
        cacheMisses: perS(raw.misses, prev?.misses, s),
        dbLoads: perS(raw.loads, prev?.loads, s),
        coalesced: perS(raw.coalesced, prev?.coalesced, s),
        leaseWaits: perS(raw.leaseWaits, prev?.leaseWaits, s),
        dbReads: perSAll(raw.dbReads, prev?.dbReads, s),
        ordersByShard: perSAll(raw.orders, prev?.orders, s),
      },
    };
  }

  /** Before the HTTP server closes: end every open stream (the page reconnects to another instance). */
  beforeApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const end of [...this.closers]) end();
    this.listeners.clear();
    this.closers.clear();
  }
}

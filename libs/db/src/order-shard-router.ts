/**
 * OrderShardRouter: user id -> logical bucket (a stable hash, 1024 buckets) -> physical shard (the
 * bucket map on the catalog primary, cached in memory). Shards are added by moving buckets, never by
 * rehashing users; an order id carries its bucket, and the bucket goes through the map like a user's does,
 * so an order whose bucket moved resolves to its new shard. The map is cached for `ttlMs`; a router that
 * has not seen a move yet is stopped by the bucket fence on the old shard (BucketFenced), reloads and
 * retries (`refresh`). The map's version (shard_map_version, bumped with every flip) says how old it is.
 */
import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { BUCKETS, decodeOrderId } from './order-id.js';

export function bucketOf(userId: bigint | number | string): number {
  // A stable, well-mixed hash (first 4 bytes of SHA-1): sequential user ids spread evenly over buckets.
  return createHash('sha1').update(String(userId)).digest().readUInt32BE(0) % BUCKETS;
}

/** The map names a shard this instance was not given (DB_SHARD_URLS lists fewer): it must not route at all. */
export class ShardNotConfigured extends Error {}

export class OrderShardRouter {
  private map: number[] = [];
  private loadedAt = 0;
  private mapVersion = 0;
  private loading: Promise<void> | null = null;

  constructor(
    /** The catalog primary, or a function naming it now (DbNodes' primary changes on a switchover/failover). */
    private readonly primary: DataSource | (() => DataSource),
    readonly shardCount: number,
    private readonly ttlMs = 5000,
  ) {}

  private get catalog(): DataSource {
    return typeof this.primary === 'function' ? this.primary() : this.primary;
  }

  /** Creates the default map (bucket % shards) for buckets that have none yet; idempotent. */
  async ensureBucketMap(): Promise<void> {
    const values: string[] = [];
    for (let b = 0; b < BUCKETS; b++) values.push(`(${b}, ${b % this.shardCount})`);
    await this.catalog.query(`INSERT IGNORE INTO shard_buckets (bucket, shard) VALUES ${values.join(',')}`);
    await this.reload();
  }

  /** The version of the cached map (0 before the first load). */
  get version(): number {
    return this.mapVersion;
  }

  /** A fence refused us: reload now (concurrent callers share one load). */
  async refresh(): Promise<void> {
    this.loading ??= this.reload().finally(() => (this.loading = null));
    await this.loading;
  }

  /**
   * A frozen bucket is mid cut-over, and its flip is what a refused write waits for: watch the map's version on
   * the catalog (one single-row read every `pollMs`, never the frozen shard) and load the map as soon as it
   * moves past `since`. False after `maxMs` (the cut-over was withdrawn or is slow: ask the shard again).
   */
  async waitForNewMap(since: number, maxMs: number, pollMs: number): Promise<boolean> {
    const until = Date.now() + maxMs;
    for (;;) {
      const [v] = await this.catalog.query('SELECT version FROM shard_map_version WHERE id = 1');
      if (Number(v?.version ?? 0) > since) {
        await this.refresh();
        return true;
      }
      if (Date.now() + pollMs > until) return false;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  async reload(): Promise<void> {
    const [rows, versions]: [{ bucket: number; shard: number }[], { version: string }[]] = await Promise.all([
      this.catalog.query('SELECT bucket, shard FROM shard_buckets'),
      this.catalog.query('SELECT version FROM shard_map_version WHERE id = 1').catch(() => [] as { version: string }[]),
    ]);
    const map = new Array<number>(BUCKETS).fill(-1);
    for (const r of rows) map[Number(r.bucket)] = Number(r.shard);
    for (let b = 0; b < BUCKETS; b++) {
      if (map[b] === -1) map[b] = b % this.shardCount;
      if (map[b] >= this.shardCount) throw new ShardNotConfigured(`bucket ${b} maps to shard ${map[b]} but only ${this.shardCount} shards are configured`);
    }
    this.map = map;
    this.mapVersion = Number(versions[0]?.version ?? 0);
    this.loadedAt = Date.now();
  }

  private async current(): Promise<number[]> {
    if (this.map.length === 0 || Date.now() - this.loadedAt > this.ttlMs) await this.reload();
    return this.map;
  }

  async shardForBucket(bucket: number): Promise<number> {
    return (await this.current())[bucket];
  }

  async shardFor(userId: bigint | number | string): Promise<{ bucket: number; shard: number }> {
    const bucket = bucketOf(userId);
    return { bucket, shard: await this.shardForBucket(bucket) };
  }

  async shardForOrder(orderId: bigint | string): Promise<{ bucket: number; shard: number }> {
    const { bucket } = decodeOrderId(orderId);
    return { bucket, shard: await this.shardForBucket(bucket) };
  }

  /** How many buckets each shard owns, from the cached map (GET /admin/shards). */
  async bucketCounts(): Promise<number[]> {
    const counts = new Array<number>(this.shardCount).fill(0);
    for (const shard of await this.current()) counts[shard]++;
    return counts;
  }

  /** Synchronous variant for bulk paths (seeding) once the map is loaded. */
  shardForBucketSync(bucket: number): number {
    if (this.map.length === 0) throw new Error('bucket map not loaded');
    return this.map[bucket];
  }
}

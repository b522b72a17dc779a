/**
 * OrderShardRouter: user id -> logical bucket (a stable hash, 1024 buckets) -> physical shard (the
 * bucket map on the catalog primary, cached in memory). Shards are added by moving buckets, never by
 * rehashing users; an order id carries its bucket, so it routes without a lookup.
 */
import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { BUCKETS, decodeOrderId } from './order-id.js';

export function bucketOf(userId: bigint | number | string): number {
  // A stable, well-mixed hash (first 4 bytes of SHA-1): sequential user ids spread evenly over buckets.
  return createHash('sha1').update(String(userId)).digest().readUInt32BE(0) % BUCKETS;
}

export class OrderShardRouter {
  private map: number[] = [];
  private loadedAt = 0;

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

  async reload(): Promise<void> {
    const rows: { bucket: number; shard: number }[] = await this.catalog.query('SELECT bucket, shard FROM shard_buckets');
    const map = new Array<number>(BUCKETS).fill(-1);
    for (const r of rows) map[Number(r.bucket)] = Number(r.shard);
    for (let b = 0; b < BUCKETS; b++) {
      if (map[b] === -1) map[b] = b % this.shardCount;
      if (map[b] >= this.shardCount) throw new Error(`bucket ${b} maps to shard ${map[b]} but only ${this.shardCount} shards are configured`);
    }
    this.map = map;
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

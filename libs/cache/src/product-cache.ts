/**
 * ProductCache: the hot-products read path of the seed's Q1 ("a few popular products get most of the
 * reads on one MySQL server: use a cache"), as two CacheAside key spaces sharing one Redis guard and one
 * invalidation bus:
 *  - `product:<id>`: the product document (or "absent", cached briefly);
 *  - `catpage:<code>:<cursor>:<limit>`: a category list page as product IDS only, each product then read
 *    through the product key space. A product update is therefore visible in lists at once; only a new
 *    product joining a category waits for the page TTL (CACHE_LIST_TTL_MS), and a deleted one disappears
 *    at once (its id reads as absent and is skipped).
 * In l1l2 mode a product's L1 entry keeps its encoded response (JSON bytes + strong ETag + version, see
 * `encodeProduct`), so the hot read route writes bytes it already has.
 * The loaders are plain functions: the caller decides where the read runs (primary today, a replica
 * through ReplicaRouter later) without the cache knowing.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Metrics } from '#libs/core';
import type { AppConfig } from '#libs/core';
import { CacheAside, type CacheResult, type CacheSource, type Encoded } from './cache-aside.js';
import { GuardedRedis } from './guarded-redis.js';
import { InvalidationBus } from './invalidation-bus.js';

/** The cache namespace of the validated config (libs/core) is the cache's settings, field for field. */
export type CacheSettings = AppConfig['cache'];

export interface ListPage {
  ids: string[];
  nextCursor: string | null;
}

export interface CategoryPage<P> {
  /** false when the page loader said the category does not exist (cached negatively). */
  found: boolean;
  items: P[];
  nextCursor: string | null;
  source: CacheSource;
}

/**
 * The response bytes of a product and their entity tag: `"<version>-<first 12 of base64url(sha256(bytes))>"`.
 * Strong: the bytes are the same on every instance for one row version (same serializer, same row), and
 * the hash makes a tag follow the bytes even across a deploy that changes the JSON shape.
 */
export function encodeProduct(p: { version: number }): Encoded {
  const body = Buffer.from(JSON.stringify(p));
  return { body, etag: `"${p.version}-${createHash('sha256').update(body).digest('base64url').slice(0, 12)}"`, version: p.version };
}

export class ProductCache<P extends { id: string; version: number }> {
  readonly redis: GuardedRedis;
  readonly bus: InvalidationBus | null;
  products: CacheAside<P>;
  pages: CacheAside<ListPage>;
  readonly instanceId = randomUUID();

  /**
   * @param redis the redis-cache client (commands); @param subscriber a dedicated connection for the
   * invalidation channel (a subscribed connection cannot run commands), owned and closed by this cache.
   */
  constructor(
    readonly settings: CacheSettings,
    redis: Redis,
    private readonly subscriber: Redis | null,
    private readonly metrics: Metrics,
  ) {
    this.redis = new GuardedRedis(redis, metrics, { timeoutMs: settings.redisTimeoutMs, failureThreshold: settings.breakerFailures, cooldownMs: settings.breakerCooldownMs });
    this.bus = settings.mode === 'l1l2' && subscriber ? new InvalidationBus(redis, subscriber, `${settings.prefix}cache-invalidate`, this.instanceId, metrics, { heartbeatMs: settings.busHeartbeatMs, silentMs: settings.busSilentMs }) : null;
    const common = {
      prefix: settings.prefix,
      mode: settings.mode,
      l1: { maxEntries: settings.l1MaxEntries, maxBytes: settings.l1MaxBytes, ttlMs: settings.l1TtlMs },
      lease: { ttlMs: settings.leaseMs, waitMs: settings.leaseWaitMs },
      xfetchBeta: settings.xfetchBeta,
    };
    this.products = new CacheAside<P>({ ...common, name: 'product', versionOf: (p) => p.version, encode: encodeProduct, l2: { ttlMs: settings.l2TtlMs, jitterPct: settings.ttlJitterPct, negativeTtlMs: settings.negativeTtlMs } }, this.redis, this.bus, metrics);
    this.pages = new CacheAside<ListPage>(
      { ...common, name: 'catpage', l1: { ...common.l1, ttlMs: Math.min(settings.l1TtlMs, settings.listTtlMs) }, l2: { ttlMs: settings.listTtlMs, jitterPct: settings.ttlJitterPct, negativeTtlMs: settings.negativeTtlMs } },
      this.redis,
      this.bus,
      metrics,
    );
  }

  /**
   * The trade-off console's run-time switch (apps/shop-api/src/console, issue 15): the tiers in use, at most
   * the configured ones (L1 needs the invalidation bus, which exists only when CACHE_MODE=l1l2). Both key
   * spaces are rebuilt empty in the new mode; reads in flight finish on the old ones, whose L1 is emptied
   * (their bus handlers stay registered and cost nothing). Returns the mode now in use.
   */
  setMode(mode: CacheSettings['mode']): CacheSettings['mode'] {
    const rank = { off: 0, l2: 1, l1l2: 2 } as const;
    if (rank[mode] > rank[this.settings.mode]) throw new Error(`cache mode ${mode} needs CACHE_MODE=${mode} at start (configured: ${this.settings.mode})`);
    for (const old of [this.products, this.pages]) {
      old.close();
      old.clearL1();
    }
    this.products = new CacheAside<P>({ ...this.products.opts, mode }, this.redis, this.bus, this.metrics);
    this.pages = new CacheAside<ListPage>({ ...this.pages.opts, mode }, this.redis, this.bus, this.metrics);
    return mode;
  }

  async start(): Promise<void> {
    await this.bus?.start();
  }

  /** `loadFresh`: the primary, read when the loaded row turns out older than the last write (see CacheAside.get). */
  product(id: string, load: () => Promise<P | null>, loadFresh?: () => Promise<P | null>): Promise<CacheResult<P>> {
    return this.products.get(id, load, loadFresh);
  }

  /** The product if L1 holds it (synchronous, no I/O), else undefined: then call `product`. */
  productLocal(id: string): CacheResult<P> | undefined {
    return this.products.getLocal(id);
  }

  /** A page of a category's products; `loadIds` returns the page's ids (one indexed query). */
  async categoryPage(
    code: string,
    cursor: string | null,
    limit: number,
    loadPage: () => Promise<ListPage | null>,
    loadProduct: (id: string) => Promise<P | null>,
    loadFreshProduct?: (id: string) => Promise<P | null>,
  ): Promise<CategoryPage<P>> {
    const page = await this.pages.get(`${code}:${cursor ?? ''}:${limit}`, loadPage);
    const ids = page.value?.ids ?? [];
    const items = await Promise.all(ids.map((id) => this.products.get(id, () => loadProduct(id), loadFreshProduct && (() => loadFreshProduct(id)))));
    return { found: page.value !== null, items: items.map((r) => r.value).filter((p): p is P => p !== null), nextCursor: page.value?.nextCursor ?? null, source: page.source };
  }

  /**
   * Call after the write committed (update, delete, and create: a new id may be negatively cached), with
   * the version the write produced ('deleted' for a delete) so a lagging replica cannot refill the old row.
   */
  invalidateProduct(id: string, version?: number | 'deleted'): Promise<void> {
    return this.products.invalidate(id, version);
  }

  async close(): Promise<void> {
    this.products.close();
    this.pages.close();
    await this.bus?.close();
    if (!this.bus) await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }
}

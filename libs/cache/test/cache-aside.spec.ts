import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis, loadConfig, Metrics } from '#libs/core';
import { DbNodes } from '#libs/db';
import { testConfig, waitFor } from '#libs/testing';
import { CircuitBreaker, ProductCache, type CacheSettings } from '#libs/cache';

// Two ProductCache instances stand for two API processes: separate L1s, one redis-cache, one invalidation
// channel (under a prefix private to this file), and the real catalog table as the database.
type Row = { id: string; name: string; priceCents: number; version: number };

const prefix = `cachelib-${randomUUID().slice(0, 8)}:`;
const settings = (over: Partial<CacheSettings> = {}): CacheSettings => ({ ...loadConfig({}).cache, prefix, leaseMs: 10_000, leaseWaitMs: 20_000, redisTimeoutMs: 5_000, l1TtlMs: 60_000, ...over });
const clients: Redis[] = [];
const caches: ProductCache<Row>[] = [];
let db: DbNodes;
let redis: Redis;

async function makeCache(over: Partial<CacheSettings> = {}): Promise<{ cache: ProductCache<Row>; metrics: Metrics; sub: Redis }> {
  const url = testConfig().redis.cacheUrl;
  const cmd = createRedis(url);
  const sub = createRedis(url, { maxRetriesPerRequest: null });
  clients.push(cmd);
  await cmd.ping(); // connected: the cache bypasses a client that is not 'ready'
  const metrics = new Metrics({ defaultMetrics: false });
  const cache = new ProductCache<Row>(settings(over), cmd, sub, metrics);
  caches.push(cache);
  return { cache, metrics, sub };
}

async function counter(metrics: Metrics, name: string, match = ''): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).filter((v) => JSON.stringify(v.labels).includes(match)).reduce((s, v) => s + Number(v.value), 0);
}

async function insertRow(name: string, price: number): Promise<string> {
  await db.primary.ds.query(`INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('test-cachelib', 'cache lib', '{"type":"object"}')`);
  const res = await db.primary.ds.query(`INSERT INTO products (category_id, name, price_cents, stock, attributes) SELECT id, ?, ?, 1, '{}' FROM categories WHERE code = 'test-cachelib'`, [name, price]);
  return String(res.insertId);
}

async function readRow(id: string): Promise<Row | null> {
  const rows = await db.primary.ds.query('SELECT id, name, price_cents, version FROM products WHERE id = ?', [id]);
  return rows.length ? { id: String(rows[0].id), name: rows[0].name, priceCents: Number(rows[0].price_cents), version: Number(rows[0].version) } : null;
}

/** The writer: commit, then invalidate (what ProductsService.update does). */
async function write(cache: ProductCache<Row>, id: string, price: number): Promise<void> {
  await db.primary.ds.query('UPDATE products SET price_cents = ?, version = version + 1 WHERE id = ?', [price, id]);
  await cache.invalidateProduct(id, (await readRow(id))!.version);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  db = await DbNodes.connect({ ...testConfig().db, poolSize: 8 });
  redis = createRedis(testConfig().redis.cacheUrl);
  clients.push(redis);
});

afterAll(async () => {
  await Promise.all(caches.map((c) => c.close()));
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await db?.close();
});

describe('ProductCache › stale sets', () => {
  it('when a slow loader read the old row and an update lands before it fills, then the old value is refused in L2 and L1', async () => {
    const { cache: a } = await makeCache();
    const { cache: b, metrics: mb } = await makeCache();
    await Promise.all([a.start(), b.start()]);
    const id = await insertRow(`race-${randomUUID()}`, 100);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let loaded!: () => void;
    const hasLoaded = new Promise<void>((r) => (loaded = r));
    const slow = b.product(id, async () => {
      const row = await readRow(id); // the old row: price 100
      loaded();
      await gate;
      return row;
    });
    await hasLoaded;
    await write(a, id, 200);
    release();
    expect((await slow).value).toMatchObject({ priceCents: 100 }); // a read concurrent with the write may see either
    expect(await counter(mb, 'cache_stale_set_rejections_total', '"l2"')).toBe(1);
    expect(await redis.get(b.products.key(id))).toBeNull();
    expect((await b.product(id, () => readRow(id))).value).toMatchObject({ priceCents: 200 });
    expect((await a.product(id, () => readRow(id))).value).toMatchObject({ priceCents: 200 });
  });

  it('when a lagging replica answers the loader after the write, then the old version is not cached', async () => {
    const { cache: a } = await makeCache();
    await a.start();
    const id = await insertRow(`lag-${randomUUID()}`, 100);
    const before = await readRow(id);
    await write(a, id, 300);
    const r = await a.product(id, async () => before); // the replica has not applied the UPDATE yet
    expect(r).toMatchObject({ source: 'db', value: { priceCents: 100 } });
    expect(await redis.get(a.products.key(id))).toBeNull();
    expect((await a.product(id, () => readRow(id))).value).toMatchObject({ priceCents: 300, version: 2 });
  });

  it('when a lagging replica answers the loader after the write, then the caller gets the primary row instead of the stale one', async () => {
    const { cache: a, metrics } = await makeCache();
    await a.start();
    const id = await insertRow(`lag-fresh-${randomUUID()}`, 100);
    const before = await readRow(id);
    await write(a, id, 300);
    let primaryReads = 0;
    const r = await a.product(id, async () => before, async () => (primaryReads++, readRow(id))); // replica behind, primary current
    expect(r).toMatchObject({ source: 'db', value: { priceCents: 300, version: 2 } });
    expect(primaryReads).toBe(1);
    expect(await counter(metrics, 'cache_stale_set_rejections_total', '"tier":"l2"')).toBe(1);
    expect(await redis.get(a.products.key(id))).toBeNull(); // the stale row was not cached either
    // A replica that has caught up is used again (the primary is only the fallback for a refused fill).
    expect((await a.product(id, () => readRow(id), async () => (primaryReads++, readRow(id)))).value).toMatchObject({ priceCents: 300 });
    expect(primaryReads).toBe(1);
  });

  it('when readers and writers interleave at random 30 times, then what both instances cache afterwards is the database row', async () => {
    const { cache: a } = await makeCache();
    const { cache: b } = await makeCache();
    await Promise.all([a.start(), b.start()]);
    const id = await insertRow(`fuzz-${randomUUID()}`, 1);
    const slowLoad = async () => {
      const row = await readRow(id);
      await sleep(Math.random() * 15);
      return row;
    };
    for (let i = 0; i < 30; i++) {
      await Promise.all([
        b.product(id, slowLoad),
        a.product(id, slowLoad),
        (async () => {
          await sleep(Math.random() * 10);
          await write(i % 2 ? a : b, id, 1000 + i);
        })(),
        b.product(id, slowLoad),
      ]);
      // Quiescent now: the invalidation broadcast may still be in flight, then both must agree with the DB.
      const truth = (await readRow(id))!.priceCents;
      await waitFor(async () => (await a.product(id, slowLoad)).value?.priceCents === truth && (await b.product(id, slowLoad)).value?.priceCents === truth, 20_000, 5);
      const l2 = await redis.get(a.products.key(id));
      if (l2) expect(JSON.parse(l2).v.priceCents).toBe(truth);
    }
  });
});

describe('ProductCache › leases and early refresh', () => {
  it('when the lease holder died before filling, then a waiter takes over once the lease expires', async () => {
    const { cache, metrics } = await makeCache({ mode: 'l2' });
    const id = await insertRow(`dead-${randomUUID()}`, 7);
    await redis.set(`${cache.products.key(id)}:lease`, 'dead-holder', 'PX', 300);
    const r = await cache.product(id, () => readRow(id));
    expect(r).toMatchObject({ source: 'db', value: { priceCents: 7 } });
    expect(await counter(metrics, 'cache_lease_waits_total')).toBe(1);
    expect((await cache.product(id, () => readRow(id))).source).toBe('l2');
  });

  it('when the holder fills and gives back its lease between a reader\'s miss and its own lease, then the reader takes the filled value instead of loading again', async () => {
    const a = await makeCache({ mode: 'l2' });
    const b = await makeCache({ mode: 'l2' });
    const bRedis = clients.at(-1)!; // b's command client (makeCache pushes it last)
    const id = await insertRow(`race-${randomUUID()}`, 9);
    const key = b.cache.products.key(id);
    let loads = 0;
    const load = () => (loads++, readRow(id));
    // Force the interleaving that concurrent requests on two instances hit now and then: b's GET of the key
    // answers a real miss, and a fills the key (releasing its lease) before b carries on.
    const realGet = bRedis.get.bind(bRedis);
    let raced = false;
    bRedis.get = (async (k: string) => {
      const v = await realGet(k);
      if (k === key && !raced) {
        raced = true;
        expect(await a.cache.product(id, load)).toMatchObject({ source: 'db', value: { priceCents: 9 } });
      }
      return v;
    }) as typeof bRedis.get;
    const r = await b.cache.product(id, load);
    expect(raced).toBe(true);
    expect(r).toMatchObject({ source: 'l2', value: { priceCents: 9 } });
    expect(loads).toBe(1);
    expect(await redis.get(`${key}:lease`)).toBeNull(); // b gave its lease back: a later invalidation's refill is not held up
  });

  it('when a hot key nears its expiry, then XFetch refreshes it in the background before it expires', async () => {
    const { cache, metrics } = await makeCache({ mode: 'l2' });
    const id = await insertRow(`xfetch-${randomUUID()}`, 5);
    const old = { ...(await readRow(id))!, priceCents: 4 };
    // Filled long ago: 50 ms of logical life left, and a load that took 10 s (so early refresh is near-certain).
    await redis.set(cache.products.key(id), JSON.stringify({ v: old, e: Date.now() + 50, d: 10_000 }), 'PX', 60_000);
    const first = await cache.product(id, () => readRow(id));
    expect(first).toMatchObject({ source: 'l2', value: { priceCents: 4 } }); // served at once, refreshed behind
    await waitFor(async () => (await cache.product(id, () => readRow(id))).value?.priceCents === 5, 20_000, 10);
    expect(await counter(metrics, 'cache_early_refresh_total')).toBeGreaterThanOrEqual(1);
  });

  it('when a key is absent, then the miss is cached negatively with its own short TTL', async () => {
    const { cache } = await makeCache({ mode: 'l2', negativeTtlMs: 60_000 });
    const id = '8888888888888';
    expect(await cache.product(id, () => readRow(id))).toEqual({ value: null, source: 'db' });
    expect(await cache.product(id, () => readRow(id))).toEqual({ value: null, source: 'negative' });
    const ttl = await redis.pttl(cache.products.key(id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('when many keys are filled, then their L2 TTLs are spread by the jitter', async () => {
    const { cache } = await makeCache({ mode: 'l2', l2TtlMs: 100_000, ttlJitterPct: 20 });
    const ttls = [];
    for (let i = 0; i < 20; i++) {
      const id = `77777${i}`;
      await cache.product(id, async () => ({ id, name: 'j', priceCents: 1, version: 1 }));
      ttls.push(await redis.pttl(cache.products.key(id)));
    }
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(79_000);
    expect(Math.max(...ttls)).toBeLessThanOrEqual(100_000);
    expect(new Set(ttls.map((t) => Math.round(t / 1000))).size).toBeGreaterThan(3);
  });
});

describe('ProductCache › invalidation bus liveness', () => {
  it('when an instance\'s subscription goes silent without closing and another instance writes, then the silent one stops serving its L1 copy after the heartbeat bound, not the L1 TTL', async () => {
    const { cache: a } = await makeCache();
    // L1 TTL 60 s (settings above): without the heartbeat, B would serve the old price for a minute.
    const { cache: b, metrics: mb, sub } = await makeCache({ busHeartbeatMs: 100, busSilentMs: 300 });
    await Promise.all([a.start(), b.start()]);
    await waitFor(async () => b.bus!.live, 10_000, 10);
    const id = await insertRow(`silent-${randomUUID()}`, 100);
    await b.product(id, () => readRow(id));
    expect(await b.product(id, () => readRow(id))).toMatchObject({ source: 'l1', value: { priceCents: 100 } });
    // B's subscriber stops reading: a stuck reader or a half-open connection, no 'close' event, no resync.
    sub.stream.pause();
    try {
      await write(a, id, 200); // its broadcast waits unread in B's socket
      await waitFor(async () => (await b.product(id, () => readRow(id))).value?.priceCents === 200, 10_000, 20);
      expect(b.bus!.live).toBe(false);
      expect(await counter(mb, 'cache_bus_silences_total')).toBeGreaterThanOrEqual(1);
    } finally {
      sub.stream.resume();
    }
    // The echo is back: the bus is live and L1 keeps entries again.
    await waitFor(async () => b.bus!.live, 10_000, 10);
    await b.product(id, () => readRow(id));
    expect(await b.product(id, () => readRow(id))).toMatchObject({ source: 'l1', value: { priceCents: 200 } });
  });
});

describe('CircuitBreaker', () => {
  it('when failures reach the threshold, then it opens, lets one probe through after the cool-down, and closes on success', () => {
    const b = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000 });
    b.failure(0);
    b.failure(0);
    expect(b.allow(0)).toBe(true);
    b.failure(0);
    expect(b.state).toBe('open');
    expect(b.allow(500)).toBe(false);
    expect(b.allow(1000)).toBe(true); // the probe
    expect(b.state).toBe('half-open');
    expect(b.allow(1000)).toBe(false); // only one probe at a time
    b.failure(1000);
    expect(b.state).toBe('open');
    expect(b.allow(2000)).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.allow(2000)).toBe(true);
  });
});

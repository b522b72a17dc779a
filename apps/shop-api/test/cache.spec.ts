import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DbNodes, ReplicaMonitor } from '#libs/db';
import { bearer, createAdmin, json, testAdminConfig, waitFor, type TestApi } from '#libs/testing';
import { CatalogCache } from '../src/catalog/product-cache.provider.js';
import { startApi } from './support.js';
import { countedAccount, insertProduct, metric, type CountedAccount } from './cache-support.js';

// Two API instances in this process, each with its own L1, sharing redis-cache (under a prefix private to
// this file) and the primary (as an account private to this file, so its SELECTs can be counted).
const CATEGORY = 'test-cache';
let a: TestApi;
let b: TestApi;
let db: DbNodes;
let account: CountedAccount;
let admin: { token: string };

beforeAll(async () => {
  db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 4 }); // fixtures: the harness's admin account
  // Generous lease and Redis timeouts: the box is shared and loaded; a waiter must not give up early.
  account = await countedAccount(db, { CACHE_MODE: 'l1l2', CACHE_LEASE_MS: '15000', CACHE_LEASE_WAIT_MS: '30000', CACHE_REDIS_TIMEOUT_MS: '5000', CACHE_L1_TTL_MS: '60000' });
  a = await startApi(account.env);
  b = await startApi(account.env);
  // The replica monitor's background checks read the primary's GTID position with a SELECT every 500 ms;
  // these instances have no replica, so stop it: every SELECT of this account is then a product/category read.
  await Promise.all([a, b].map((api) => api.app.get(ReplicaMonitor).stop()));
  admin = await createAdmin(a);
}, 120_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await account?.drop();
  await db?.close();
});

const get = (api: TestApi, path: string, headers: Record<string, string> = {}) => fetch(`${api.url}${path}`, { headers });

describe('GET /products/:id', () => {
  it('when 500 concurrent requests ask 2 instances for one cold product, then the database runs exactly 1 query', async () => {
    const id = await insertProduct(db, CATEGORY, `cold-${randomUUID()}`, 4242);
    const before = await account.selects();
    const responses = await Promise.all(Array.from({ length: 500 }, (_, i) => get(i % 2 ? b : a, `/products/${id}`)));
    const bodies = await Promise.all(responses.map((r) => json(r)));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(new Set(bodies.map((x) => JSON.stringify(x))).size).toBe(1);
    expect(bodies[0]).toMatchObject({ id, priceCents: 4242 });
    const after = await account.selectsReaching(before + 1);
    const tiers = responses.map((r) => r.headers.get('x-cache'));
    expect(after - before).toBe(1);
    expect(tiers.filter((t) => t === 'db')).toHaveLength(1);
    expect(tiers.every((t) => ['db', 'coalesced', 'l1', 'l2'].includes(t!))).toBe(true);
    // One instance loaded; the other waited on the Redis lease (or found the value already filled).
    expect((await metric(a.url, 'cache_coalesced_total')) + (await metric(b.url, 'cache_coalesced_total'))).toBeGreaterThan(0);
  });

  it('when 500 concurrent requests ask 2 instances for a product just written, then the database runs exactly 1 query (for each of 5 keys)', async () => {
    // Right after a write both L1s are dropped and L2 is deleted: the stampede is cold again. A process that
    // missed L2, then won the lease after the first loader had filled it and let go, used to load a second time.
    for (let k = 0; k < 5; k++) {
      const id = await insertProduct(db, CATEGORY, `hot-write-${randomUUID()}`, 1000);
      await get(a, `/products/${id}`);
      await get(b, `/products/${id}`);
      const received = await metric(b.url, 'cache_invalidations_received_total');
      const price = 2000 + k;
      const patched = await fetch(`${a.url}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify({ priceCents: price }) });
      expect(patched.status).toBe(200);
      await waitFor(async () => (await metric(b.url, 'cache_invalidations_received_total')) > received, 20_000, 5);
      const before = await account.selects();
      const responses = await Promise.all(Array.from({ length: 500 }, (_, i) => get(i % 2 ? b : a, `/products/${id}`)));
      const bodies = await Promise.all(responses.map((r) => json(r)));
      expect(responses.every((r) => r.status === 200)).toBe(true);
      expect(new Set(bodies.map((x) => x.priceCents))).toEqual(new Set([price]));
      const after = await account.selectsReaching(before + 1);
      expect({ key: k, loads: after - before }).toEqual({ key: k, loads: 1 });
    }
  });

  it('when a product is read twice on one instance, then the second read is an L1 hit', async () => {
    const id = await insertProduct(db, CATEGORY, `twice-${randomUUID()}`);
    expect((await get(a, `/products/${id}`)).headers.get('x-cache')).toBe('db');
    expect((await get(a, `/products/${id}`)).headers.get('x-cache')).toBe('l1');
    expect((await get(b, `/products/${id}`)).headers.get('x-cache')).toBe('l2');
    expect((await get(b, `/products/${id}`)).headers.get('x-cache')).toBe('l1');
  });

  it('when a product is updated through instance A, then instance B serves the new value (L1 broadcast delay measured)', async () => {
    const id = await insertProduct(db, CATEGORY, `upd-${randomUUID()}`, 1000);
    await get(b, `/products/${id}`);
    expect((await get(b, `/products/${id}`)).headers.get('x-cache')).toBe('l1');
    const received = await metric(b.url, 'cache_invalidations_received_total');

    const patched = await fetch(`${a.url}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify({ priceCents: 2000 }) });
    expect(patched.status).toBe(200);
    const t0 = performance.now();
    const fresh = await waitFor(async () => {
      const body = await json(await get(b, `/products/${id}`));
      return body.priceCents === 2000 ? body : undefined;
    }, 20_000, 2);
    const observedMs = performance.now() - t0;
    expect(fresh).toMatchObject({ id, priceCents: 2000, version: 2 });
    expect(await metric(b.url, 'cache_invalidations_received_total')).toBeGreaterThan(received);
    const busDelayMs = b.app.get(CatalogCache).bus!.lastDelayMs;
    // A measurement, not an assertion (no wall-clock assertions on a shared box).
    console.log(`L1 invalidation broadcast: publish→receive ${busDelayMs} ms; PATCH response→B serves new value ${observedMs.toFixed(1)} ms`);
    // A's own L1 and the shared L2 were dropped too.
    expect(await json(await get(a, `/products/${id}`))).toMatchObject({ priceCents: 2000 });
  });

  it('when a product held encoded in both L1s is updated through A, then the next read on both instances shows the new version and ETag', async () => {
    // L1 keeps the encoded response (bytes + ETag + version): it must leave with the value on invalidation.
    const id = await insertProduct(db, CATEGORY, `enc-${randomUUID()}`, 1000);
    for (const api of [a, b]) {
      await get(api, `/products/${id}`);
      expect((await get(api, `/products/${id}`)).headers.get('x-cache')).toBe('l1');
    }
    const [oldA, oldB] = await Promise.all([a, b].map(async (api) => (await get(api, `/products/${id}`)).headers.get('etag')));
    expect(oldA).toBe(oldB); // same row version, same bytes, same tag on both instances
    const received = await metric(b.url, 'cache_invalidations_received_total');
    const patched = await fetch(`${a.url}/products/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify({ priceCents: 3000 }) });
    expect(patched.status).toBe(200);
    await waitFor(async () => (await metric(b.url, 'cache_invalidations_received_total')) > received, 20_000, 5);
    const next = await Promise.all([a, b].map((api) => get(api, `/products/${id}`, { 'if-none-match': oldA! })));
    const bodies = await Promise.all(next.map((r) => json(r)));
    expect(next.map((r) => r.status)).toEqual([200, 200]);
    expect(bodies.map((x) => [x.version, x.priceCents])).toEqual([[2, 3000], [2, 3000]]);
    const etags = next.map((r) => r.headers.get('etag'));
    expect(etags[0]).not.toBe(oldA);
    expect(etags[1]).toBe(etags[0]);
    expect(etags[0]!.startsWith('"2-')).toBe(true);
    // And the new entry is what L1 now serves, byte for byte.
    for (const api of [a, b]) {
      const again = await get(api, `/products/${id}`);
      expect(again.headers.get('x-cache')).toBe('l1');
      expect(again.headers.get('etag')).toBe(etags[0]);
      expect(await json(again)).toEqual(bodies[0]);
    }
  });

  it('when a product is deleted through A, then both instances answer 404', async () => {
    const id = await insertProduct(db, CATEGORY, `del-${randomUUID()}`);
    await get(a, `/products/${id}`);
    await get(b, `/products/${id}`);
    expect((await fetch(`${a.url}/products/${id}`, { method: 'DELETE', headers: bearer(admin.token) })).status).toBe(204);
    await waitFor(async () => (await get(b, `/products/${id}`)).status === 404, 20_000, 5);
    expect((await get(a, `/products/${id}`)).status).toBe(404);
  });

  it('when an absent id is read twice, then the second 404 is a negative-cache hit and costs no query', async () => {
    const absent = '8999999999999';
    const first = await get(a, `/products/${absent}`);
    expect(first.status).toBe(404);
    expect((await json(first)).error).toMatchObject({ status: 404, code: 'not_found' });
    const before = await account.selects();
    const second = await get(a, `/products/${absent}`);
    expect(second.status).toBe(404);
    expect(second.headers.get('x-cache')).toBe('negative');
    const other = await get(b, `/products/${absent}`);
    expect(other.status).toBe(404);
    expect(other.headers.get('x-cache')).toBe('negative');
    expect(await account.selects()).toBe(before);
  });

  it('when the id is malformed, negative, zero or too large, then 400 in the error shape, never 500', async () => {
    for (const bad of ['abc', '-1', '0', '1.5', '99999999999999999999', '1e3', "1'%20OR%201=1", '%20']) {
      const res = await get(a, `/products/${bad}`);
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ status: 400, code: 'bad_request' });
    }
  });

  it('when a product is created after its id was read as absent, then it is visible at once', async () => {
    // Reads the id AUTO_INCREMENT will hand out next, then creates the product through the API.
    const [row] = await db.primary.ds.query('SELECT MAX(id) + 1 AS next FROM products');
    const guess = String(row.next);
    await get(a, `/products/${guess}`);
    await get(b, `/products/${guess}`);
    const created = await json(
      await fetch(`${a.url}/products`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify({ categoryCode: CATEGORY, name: `new-${randomUUID()}`, priceCents: 1, stock: 1, attributes: {} }) }),
    );
    await waitFor(async () => (await get(b, `/products/${created.id}`)).status === 200, 20_000, 5);
    expect((await get(a, `/products/${created.id}`)).status).toBe(200);
  });
});

describe('GET /categories/:code/products', () => {
  it('when a category is listed twice, then the page comes from the cache and follows product updates', async () => {
    const code = `test-cl-${randomUUID().slice(0, 8)}`;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await insertProduct(db, code, `list-${i}`, 100 + i));
    const first = await get(a, `/categories/${code}/products?limit=2`);
    expect(first.status).toBe(200);
    const page1 = await json(first);
    expect(page1.items.map((p: any) => p.id)).toEqual(ids.slice(0, 2));
    expect(page1.nextCursor).toBe(ids[1]);
    const page2 = await json(await get(a, `/categories/${code}/products?limit=2&cursor=${page1.nextCursor}`));
    expect(page2).toMatchObject({ items: [{ id: ids[2] }], nextCursor: null });
    expect((await get(a, `/categories/${code}/products?limit=2`)).headers.get('x-cache')).toBe('l1');

    await fetch(`${b.url}/products/${ids[0]}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...bearer(admin.token) }, body: JSON.stringify({ name: 'renamed' }) });
    await waitFor(async () => (await json(await get(a, `/categories/${code}/products?limit=2`))).items[0].name === 'renamed', 20_000, 5);
  });

  it('when the category is unknown or the paging is bad, then 404 / 400', async () => {
    expect((await get(a, `/categories/no-such-${randomUUID().slice(0, 8)}/products`)).status).toBe(404);
    for (const q of ['limit=0', 'limit=101', 'limit=x', 'cursor=-1', 'cursor=abc', 'limit=1&limit=2']) {
      const res = await get(a, `/categories/${CATEGORY}/products?${q}`);
      expect(res.status).toBe(400);
      expect((await json(res)).error.code).toBe('bad_request');
    }
  });
});

describe('GET /metrics', () => {
  it('when the cache has worked, then hits per tier, misses, coalesced, lease waits, invalidations and bypasses are exported', async () => {
    const text = await (await get(a, '/metrics')).text();
    for (const name of [
      'cache_hits_total',
      'cache_misses_total',
      'cache_db_loads_total',
      'cache_coalesced_total',
      'cache_lease_waits_total',
      'cache_stale_set_rejections_total',
      'cache_invalidations_sent_total',
      'cache_invalidations_received_total',
      'cache_redis_bypass_total',
      'cache_redis_breaker_state',
      'cache_invalidation_delay_seconds',
      'cache_l1_resyncs_total',
      'cache_bus_silences_total',
    ]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    expect(await metric(a.url, 'cache_hits_total', 'tier="l1"')).toBeGreaterThan(0);
  });
});



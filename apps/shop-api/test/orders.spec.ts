import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, createAdmin, fixtureOrderId, json, signUp, signUpOnEveryShard, testAdminConfig, waitForReplicas, type TestApi } from '#libs/testing';
import { bucketOf, DbNodes, decodeOrderId, encodeOrderId, monthStart, OrderShardRouter, partitionName } from '#libs/db';
import { OrdersRepository } from '../src/orders/orders.repository.js';
import { startApi } from './support.js';

let api: TestApi;
let db: DbNodes;
let admin: { token: string; id: string };
let categoryId: number;
const tag = randomUUID().slice(0, 8);
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  api = await startApi();
  // Fixtures (stock, a failure-injecting trigger) use the harness's admin account, not the app's DML-only one.
  // With the replicas: product() waits until they have each fixture (the API reads products from them).
  db = await DbNodes.connect({ ...testAdminConfig().db, poolSize: 4 });
  admin = await createAdmin(api);
  await db.primary.ds.query(`INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('test-orders', 'Order test goods', '{"type":"object"}')`);
  [{ id: categoryId }] = await db.primary.ds.query(`SELECT id FROM categories WHERE code = 'test-orders'`);
});
afterAll(async () => {
  for (const c of cleanup) await c().catch(() => undefined);
  await api?.close();
  await db?.close();
});

async function product(stock: number, priceCents = 1000): Promise<string> {
  const res = await db.primary.ds.query("INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES (?, ?, ?, ?, '{}')", [categoryId, `order-test-${tag}`, priceCents, stock]);
  // Written on the primary, read through the API (replicas): every replica must have it first.
  await waitForReplicas(db);
  return String(res.insertId);
}
async function stockOf(id: string): Promise<number> {
  const [r] = await db.primary.ds.query('SELECT stock FROM products WHERE id = ?', [id]);
  return Number(r.stock);
}
function post(token: string, body: unknown, key: string | null = randomUUID()) {
  return fetch(`${api.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'idempotency-key': key }), ...bearer(token) },
    body: JSON.stringify(body),
  });
}
const get = (path: string, token: string) => fetch(`${api.url}${path}`, { headers: bearer(token) });
const shardIndexOf = (userId: string) => new OrderShardRouter(db.primary.ds, db.shards.length).shardFor(userId).then((s) => s.shard);

describe('POST /orders', () => {
  it("when a user orders, then the order lands on the user's shard, in its month's partition, with every item on that same shard", async () => {
    const user = await signUp(api);
    const [p1, p2] = [await product(10, 1250), await product(10, 300)];
    const res = await post(user.token, { items: [{ productId: p1, quantity: 2 }, { productId: p2, quantity: 1 }] });
    expect(res.status).toBe(201);
    const order = await json(res);
    expect(typeof order.id).toBe('string');
    expect(order).toMatchObject({ userId: user.id, status: 'placed', totalCents: 2 * 1250 + 300, itemCount: 2, bucket: bucketOf(user.id) });
    expect(decodeOrderId(order.id).bucket).toBe(bucketOf(user.id));

    const home = await shardIndexOf(user.id);
    expect(order.shard).toBe(db.shards[home].name);
    const partition = partitionName(monthStart(new Date(order.createdAt)));
    expect(order.partition).toBe(partition);
    const [inPartition] = await db.shards[home].ds.query(`SELECT COUNT(*) AS n FROM orders PARTITION (${partition}) WHERE id = ?`, [order.id]);
    expect(Number(inPartition.n)).toBe(1);
    const [items] = await db.shards[home].ds.query(`SELECT COUNT(*) AS n FROM order_items PARTITION (${partition}) WHERE order_id = ?`, [order.id]);
    expect(Number(items.n)).toBe(2);
    for (const [i, other] of db.shards.entries()) {
      if (i === home) continue;
      const [o] = await other.ds.query('SELECT COUNT(*) AS n FROM orders WHERE id = ?', [order.id]);
      const [it2] = await other.ds.query('SELECT COUNT(*) AS n FROM order_items WHERE order_id = ?', [order.id]);
      expect(Number(o.n) + Number(it2.n)).toBe(0);
    }
    expect(await stockOf(p1)).toBe(8);
    expect(await stockOf(p2)).toBe(9);

    // The id alone finds it: bucket bits -> shard, time bits -> partition.
    const fetched = await json(await get(`/orders/${order.id}`, user.token));
    expect(fetched).toMatchObject({ id: order.id, shard: order.shard, totalCents: order.totalCents });
    expect(fetched.items).toEqual([
      { lineNo: 1, productId: p1, quantity: 2, unitPriceCents: 1250 },
      { lineNo: 2, productId: p2, quantity: 1, unitPriceCents: 300 },
    ]);
  });

  it('when 50 concurrent requests share one Idempotency-Key, then exactly one order exists and every caller gets the same response', async () => {
    const user = await signUp(api);
    const p = await product(100);
    const key = `idem-${randomUUID()}`;
    const responses = await Promise.all(Array.from({ length: 50 }, () => post(user.token, { items: [{ productId: p, quantity: 3 }] }, key)));
    expect(responses.map((r) => r.status)).toEqual(new Array(50).fill(201));
    const bodies = await Promise.all(responses.map((r) => r.text()));
    expect(new Set(bodies).size).toBe(1);
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true').length).toBe(49);
    const home = db.shards[await shardIndexOf(user.id)];
    const [n] = await home.ds.query('SELECT COUNT(*) AS n FROM orders WHERE user_id = ?', [user.id]);
    expect(Number(n.n)).toBe(1);
    expect(await stockOf(p)).toBe(97);
  });

  it('when 20 retries race for a key whose claimer died, then exactly one takes it over and one order exists', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const key = `dead-${randomUUID()}`;
    const home = db.shards[await shardIndexOf(user.id)];
    // A claimer that died 30 s into a 1 s lease: its key is still pending, under the order id it never wrote.
    const hash = createHash('sha256').update(JSON.stringify([[p, 2]])).digest('hex');
    const deadOrderId = encodeOrderId(Date.now() - 60_000, bucketOf(user.id), 7).toString();
    await home.ds.query(
      `INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, order_id, claimed_at, lease_until, created_at)
       VALUES (?, ?, ?, 'pending', ?, NOW(3) - INTERVAL 31 SECOND, NOW(3) - INTERVAL 30 SECOND, NOW(3))`,
      [user.id, key, hash, deadOrderId],
    );
    const responses = await Promise.all(Array.from({ length: 20 }, () => post(user.token, { items: [{ productId: p, quantity: 2 }] }, key)));
    expect(responses.map((r) => r.status)).toEqual(new Array(20).fill(201));
    expect(new Set(await Promise.all(responses.map((r) => r.text()))).size).toBe(1);
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true').length).toBe(19);
    const [n] = await home.ds.query('SELECT COUNT(*) AS n FROM orders WHERE user_id = ?', [user.id]);
    expect(Number(n.n)).toBe(1);
    expect(await stockOf(p)).toBe(8);
  });

  it('when an order takes stock of a product someone just read, then the next product read shows the new stock (cache invalidated)', async () => {
    const user = await signUp(api);
    const p = await product(10);
    expect(await json(await fetch(`${api.url}/products/${p}`))).toMatchObject({ stock: 10 });
    expect(await json(await fetch(`${api.url}/products/${p}`))).toMatchObject({ stock: 10 }); // now cached
    expect((await post(user.token, { items: [{ productId: p, quantity: 4 }] })).status).toBe(201);
    expect((await json(await fetch(`${api.url}/products/${p}`))).stock).toBe(6);
  });

  it('when a key is reused with a different body, then 422 and no second order', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const key = randomUUID();
    expect((await post(user.token, { items: [{ productId: p, quantity: 1 }] }, key)).status).toBe(201);
    const res = await post(user.token, { items: [{ productId: p, quantity: 2 }] }, key);
    expect(res.status).toBe(422);
    expect((await json(res)).error.code).toBe('idempotency_key_reused');
    expect(await stockOf(p)).toBe(9);
  });

  it('when concurrent buyers want more than the stock, then exactly the stock is sold and the rest get 409', async () => {
    const p = await product(5);
    const users = await Promise.all(Array.from({ length: 12 }, () => signUp(api)));
    const res = await Promise.all(users.map((u) => post(u.token, { items: [{ productId: p, quantity: 1 }] })));
    const statuses = res.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201).length).toBe(5);
    expect(statuses.filter((s) => s === 409).length).toBe(7);
    expect(await stockOf(p)).toBe(0);
    let orders = 0;
    for (const s of db.shards) {
      const [n] = await s.ds.query(`SELECT COUNT(*) AS n FROM order_items WHERE product_id = ?`, [p]);
      orders += Number(n.n);
    }
    expect(orders).toBe(5);
  });

  it('when the order write fails on the shard, then 503, no order, and the reserved stock is released', async () => {
    const user = await signUp(api);
    const [ok, poisoned] = [await product(10), await product(10)];
    const home = db.shards[await shardIndexOf(user.id)];
    // A real failure on the real shard: a trigger that rejects items of this one product (test-owned).
    const trigger = `trg_fail_${tag}`;
    await home.ds.query(
      `CREATE TRIGGER ${trigger} BEFORE INSERT ON order_items FOR EACH ROW BEGIN IF NEW.product_id = ${Number(poisoned)} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; END IF; END`,
    );
    cleanup.push(() => home.ds.query(`DROP TRIGGER IF EXISTS ${trigger}`));
    const key = randomUUID();
    const res = await post(user.token, { items: [{ productId: ok, quantity: 2 }, { productId: poisoned, quantity: 3 }] }, key);
    expect(res.status).toBe(503);
    expect((await json(res)).error.code).toBe('order_write_failed');
    expect(await stockOf(ok)).toBe(10);
    expect(await stockOf(poisoned)).toBe(10);
    const [n] = await home.ds.query('SELECT COUNT(*) AS n FROM orders WHERE user_id = ?', [user.id]);
    expect(Number(n.n)).toBe(0);
    // The key was released: once the shard is healthy, the same key places the order.
    await home.ds.query(`DROP TRIGGER ${trigger}`);
    expect((await post(user.token, { items: [{ productId: ok, quantity: 2 }, { productId: poisoned, quantity: 3 }] }, key)).status).toBe(201);
    expect(await stockOf(poisoned)).toBe(7);
  });

  it('when the input is bad (no key, empty cart, negative or zero quantity, malformed or unknown product, duplicate lines, no token), then 4xx and stock untouched', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const cases: [unknown, string | null, number][] = [
      [{ items: [{ productId: p, quantity: 1 }] }, null, 400],
      [{ items: [{ productId: p, quantity: 1 }] }, 'has spaces', 400],
      [{ items: [{ productId: p, quantity: 1 }] }, 'x'.repeat(65), 400],
      [{ items: [] }, randomUUID(), 400],
      [{}, randomUUID(), 400],
      [{ items: [{ productId: p, quantity: -1 }] }, randomUUID(), 400],
      [{ items: [{ productId: p, quantity: 0 }] }, randomUUID(), 400],
      [{ items: [{ productId: p, quantity: 1.5 }] }, randomUUID(), 400],
      [{ items: [{ productId: 'abc', quantity: 1 }] }, randomUUID(), 400],
      [{ items: [{ productId: Number(p), quantity: 1 }] }, randomUUID(), 400],
      [{ items: [{ productId: p, quantity: 1 }, { productId: p, quantity: 1 }] }, randomUUID(), 400],
      [{ items: [{ productId: p, quantity: 1 }], extra: true }, randomUUID(), 400],
      [{ items: [{ productId: '999999999999', quantity: 1 }] }, randomUUID(), 422],
    ];
    for (const [body, key, status] of cases) {
      const res = await post(user.token, body, key);
      expect({ body, status: res.status }).toEqual({ body, status });
      const err = (await json(res)).error;
      expect(err.status).toBe(status);
    }
    expect((await fetch(`${api.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'k' }, body: '{"items":[]}' })).status).toBe(401);
    expect(await stockOf(p)).toBe(10);
  });
});

describe('GET /orders/:id', () => {
  it("when another user asks for an order, then 404; the owner and an admin see it", async () => {
    const [owner, other] = [await signUp(api), await signUp(api)];
    const order = await json(await post(owner.token, { items: [{ productId: await product(5), quantity: 1 }] }));
    expect((await get(`/orders/${order.id}`, other.token)).status).toBe(404);
    expect((await get(`/orders/${order.id}`, owner.token)).status).toBe(200);
    expect(await json(await get(`/orders/${order.id}`, admin.token))).toMatchObject({ id: order.id, userId: owner.id });
  });

  it('when the id is malformed, then 400; when it is well-formed but unknown, then 404', async () => {
    const user = await signUp(api);
    for (const bad of ['abc', '0', '-5', '1.5', '01', '9223372036854775808', '99999999999999999999', "1'%20OR%201=1"]) {
      const res = await get(`/orders/${bad}`, user.token);
      expect({ bad, status: res.status }).toEqual({ bad, status: 400 });
    }
    expect((await get(`/orders/${encodeOrderId(Date.now(), 3, 1)}`, user.token)).status).toBe(404);
  });
});

describe('GET /me/orders', () => {
  it("when a user pages through a range, then they get only their own orders, newest first, each exactly once", async () => {
    const [user, other] = [await signUp(api), await signUp(api)];
    const p = await product(100);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await json(await post(user.token, { items: [{ productId: p, quantity: 1 }] }))).id);
    await post(other.token, { items: [{ productId: p, quantity: 1 }] });
    // Two older orders in earlier months, written straight to the user's shard (same ids, same rules).
    const home = await shardIndexOf(user.id);
    const repo = new OrdersRepository();
    for (const monthsAgo of [1, 2]) {
      const { id, createdAt } = fixtureOrderId(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - monthsAgo, 10), bucketOf(user.id));
      await db.shards[home].ds.transaction((em) =>
        repo.insertOrder(em, { id, userId: user.id, bucket: bucketOf(user.id), status: 'placed', totalCents: 1000, itemCount: 1, createdAt }, [{ lineNo: 1, productId: p, quantity: 1, unitPriceCents: 1000 }]),
      );
      made.push(id);
    }
    const from = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 3, 1)).toISOString().slice(0, 10);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const body: any = await json(await get(`/me/orders?from=${from}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, user.token));
      seen.push(...body.orders.map((o: any) => o.id));
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual([...made].sort((a, b) => (BigInt(b) > BigInt(a) ? 1 : -1)));

    // A range with only last month's order.
    const lastMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 1)).toISOString().slice(0, 10);
    const thisMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1)).toISOString().slice(0, 10);
    const one = await json(await get(`/me/orders?from=${lastMonth}&to=${thisMonth}`, user.token));
    expect(one.orders.map((o: any) => o.id)).toEqual([made[5]]);
  });

  it('when dates, limits or cursors are bad or tampered with, then 400', async () => {
    const user = await signUp(api);
    const p = await product(10);
    for (let i = 0; i < 3; i++) await post(user.token, { items: [{ productId: p, quantity: 1 }] });
    const page = await json(await get('/me/orders?limit=1', user.token));
    expect(page.nextCursor).toEqual(expect.any(String));
    const [idPart, sig] = page.nextCursor.split('.');
    const forged = `${Buffer.from(encodeOrderId(Date.now() + 1000, 1, 1).toString()).toString('base64url')}.${sig}`;
    const bad = [
      'from=yesterday', 'to=2026-13-01', 'from=2026-02-30', 'from=2026-03-01&to=2026-02-01', 'limit=0', 'limit=101', 'limit=abc',
      'cursor=garbage', `cursor=${idPart}.${'A'.repeat(22)}`, `cursor=${forged}`, 'unknown=1',
    ];
    for (const q of bad) {
      const res = await get(`/me/orders?${q}`, user.token);
      expect({ q, status: res.status }).toEqual({ q, status: 400 });
    }
    // Another user cannot replay someone's cursor.
    const other = await signUp(api);
    expect((await get(`/me/orders?limit=1&cursor=${encodeURIComponent(page.nextCursor)}`, other.token)).status).toBe(400);
    expect((await get(`/me/orders?limit=1&cursor=${encodeURIComponent(page.nextCursor)}`, user.token)).status).toBe(200);
  });

  it("when EXPLAIN runs the month query, then it touches one partition (through the dialect module)", async () => {
    const repo = new OrdersRepository();
    const m = monthStart(new Date());
    const next = new Date(Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1, 1));
    for (const s of db.shards) {
      const plan = await s.dialect.explainPartitions(s.ds, repo.listForUserSql(false), ['42', m, next, 20]);
      const orders = plan.find((r) => r.table === 'orders')!;
      expect(orders.partitions).toEqual([partitionName(m)]);
      expect(orders.key).toBe('ix_orders_user_created');
    }
  });
});

describe('GET /admin/orders/recent', () => {
  it('when an admin asks, then the globally newest orders come back merged newest first across shards; users get 403', async () => {
    const p = await product(100);
    // Three users on each shard, ordering in turn, so the newest orders span the shards by construction.
    const grouped = await signUpOnEveryShard(api, shardIndexOf, db.shards.length, 3);
    const users = [0, 1, 2].flatMap((i) => db.shards.map((_, k) => grouped[k * 3 + i]));
    for (const u of users) await post(u.token, { items: [{ productId: p, quantity: 1 }] });
    const body = await json(await get('/admin/orders/recent?limit=8', admin.token));
    const ids: string[] = body.orders.map((o: any) => o.id);
    expect(ids.length).toBe(8);
    for (let i = 1; i < ids.length; i++) expect(BigInt(ids[i - 1]) > BigInt(ids[i])).toBe(true);
    // The same answer as reading every shard in full and sorting (on this test database).
    const all: string[] = [];
    // Up to the newest id answered: other test files (and runs) keep placing orders on the shared shards meanwhile.
    for (const s of db.shards) all.push(...(await s.ds.query('SELECT id FROM orders WHERE id <= ? ORDER BY id DESC LIMIT 8', [ids[0]])).map((r: any) => String(r.id)));
    const expected = all.sort((a, b) => (BigInt(b) > BigInt(a) ? 1 : -1)).slice(0, 8);
    expect(ids).toEqual(expected);
    expect(new Set(body.orders.map((o: any) => o.shard)).size).toBeGreaterThan(1);
    expect(body.scatter).toMatchObject({ shards: db.shards.length });
    expect((await get('/admin/orders/recent', users[0].token)).status).toBe(403);
    expect((await get('/admin/orders/recent?limit=0', admin.token)).status).toBe(400);
  });
});

describe('GET /admin/shards', () => {
  it('when an admin asks, then every bucket is owned by exactly one shard and each shard lists its month partitions', async () => {
    const body = await json(await get('/admin/shards', admin.token));
    expect(body.buckets).toBe(1024);
    expect(body.shards.reduce((s: number, x: any) => s + x.buckets, 0)).toBe(1024);
    for (const s of body.shards) {
      expect(s.partitions.map((p: any) => p.name)).toContain(partitionName(monthStart(new Date())));
      expect(s.partitions[s.partitions.length - 1].name).toBe('pmax');
    }
  });
});

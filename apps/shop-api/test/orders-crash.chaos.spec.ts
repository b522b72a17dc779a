/**
 * POST /orders crash windows, on the real stack. A shop-api child process (dist/…/main.js, NODE_ENV=test)
 * with ORDER_FAILPOINT=<point> SIGKILLs itself at that point of its first order; a lost commit
 * acknowledgement is a real one: a TCP relay in front of the shards holds back the server's answer to the
 * order's COMMIT and kills that MariaDB session (KILL CONNECTION), so the commit is durable but the API
 * never hears it. Then the same Idempotency-Keys are retried against a fresh instance, the reconciler runs,
 * and stock is reconciled against the orders on the shards. Only this file's processes and sessions die;
 * the database servers themselves are never stopped. A chaos spec (run alone, after the suite) because
 * booting and killing API processes loads the machine enough to upset tests that count queries or time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '#libs/core';
import { DbNodes } from '#libs/db';
import { bearer, json, signUp, testEnv, waitFor, waitForReplicas, type TestApi } from '#libs/testing';
import { StockReconciler } from '../src/orders/stock-reconciler.js';
import { startApi } from './support.js';

const LEASE_MS = 1500;
const COMMON = { ORDER_LEASE_MS: String(LEASE_MS), ORDER_RECONCILE_INTERVAL_S: '0', PARTITION_MAINTENANCE_INTERVAL_S: '0' };

let api: TestApi;
let db: DbNodes;
let reconciler: StockReconciler;
let categoryId: number;
const tag = randomUUID().slice(0, 8);
const children: ChildProcess[] = [];
const relays: Relay[] = [];

beforeAll(async () => {
  api = await startApi(COMMON);
  db = api.app.get(DbNodes);
  reconciler = api.app.get(StockReconciler);
  await db.primary.ds.query(`INSERT IGNORE INTO categories (code, name, attribute_schema) VALUES ('test-orders', 'Order test goods', '{"type":"object"}')`);
  [{ id: categoryId }] = await db.primary.ds.query(`SELECT id FROM categories WHERE code = 'test-orders'`);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  for (const r of relays) await r.close();
  await api?.close();
});

// ------------------------------------------------------------------ helpers

async function product(stock: number): Promise<string> {
  const res = await db.primary.ds.query("INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES (?, ?, 1000, ?, '{}')", [categoryId, `crash-test-${tag}`, stock]);
  await waitForReplicas(db);
  return String(res.insertId);
}
async function stockOf(id: string): Promise<number> {
  const [r] = await db.primary.ds.query('SELECT stock FROM products WHERE id = ?', [id]);
  return Number(r.stock);
}
async function reservations(productId: string): Promise<{ id: string; state: string; quantity: number }[]> {
  const rows = await db.primary.ds.query('SELECT reservation_id, state, quantity FROM stock_reservations WHERE product_id = ? ORDER BY reservation_id', [productId]);
  return rows.map((r: any) => ({ id: String(r.reservation_id), state: r.state, quantity: Number(r.quantity) }));
}
/** Units of a product in orders on every shard. */
async function orderedUnits(productId: string): Promise<number> {
  let n = 0;
  for (const s of db.shards) n += Number((await s.ds.query('SELECT COALESCE(SUM(quantity), 0) AS n FROM order_items WHERE product_id = ?', [productId]))[0].n);
  return n;
}
async function ordersOf(userId: string): Promise<string[]> {
  const ids: string[] = [];
  for (const s of db.shards) ids.push(...(await s.ds.query('SELECT id FROM orders WHERE user_id = ?', [userId])).map((r: any) => String(r.id)));
  return ids;
}
async function keyRow(userId: string, key: string): Promise<{ status: string } | null> {
  for (const s of db.shards) {
    const [r] = await s.ds.query('SELECT status FROM idempotency_keys WHERE user_id = ? AND idem_key = ?', [userId, key]);
    if (r) return { status: r.status };
  }
  return null;
}
function post(url: string, token: string, items: { productId: string; quantity: number }[], key: string) {
  return fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key, ...bearer(token) }, body: JSON.stringify({ items }) });
}
/** Settle everything of these products that is settleable (past its lease), as often as it takes. */
async function reconcileUntilSettled(productIds: string[]): Promise<void> {
  await waitFor(async () => {
    await reconciler.reconcileOnce();
    for (const p of productIds) if ((await reservations(p)).some((r) => r.state === 'reserved')) return false;
    return true;
  }, 20_000, 250);
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** shop-api as a child process with a failpoint; resolves when it answers /health/live. */
async function startChild(failpoint: string): Promise<{ url: string; exited: Promise<NodeJS.Signals | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(repoRoot(), 'dist/apps/shop-api/src/main.js')], {
    cwd: repoRoot(),
    env: { ...process.env, ...testEnv(), ...COMMON, NODE_OPTIONS: '', LOG_LEVEL: 'error', PORT: String(port), ORDER_FAILPOINT: failpoint },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/health/live`).catch(() => null))?.ok, 30_000, 100);
  return { url, exited };
}

/**
 * A TCP relay in front of one MariaDB node. Armed, it lets the COMMIT of the next transaction that inserted
 * an order reach the server, holds back the server's answer, kills that session from an admin connection
 * and closes the client's socket: the commit happened, its acknowledgement is lost.
 */
interface Relay {
  url: string;
  close(): Promise<void>;
}
/** Shared by the relays of one API: armed for exactly one lost acknowledgement across all shards. */
interface Trap {
  armed: boolean;
  killed: number;
  /** After the kill, the shard stays unreachable through this relay (every socket cut, new ones refused). */
  thenCut?: boolean;
}
async function relay(target: { host: string; port: number }, admin: DbNodes['shards'][number]['ds'], trap: Trap): Promise<Relay> {
  const sockets = new Set<Socket>();
  const r: Relay = { url: '', close: async () => undefined };
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let threadId = 0;
    let insertedOrder = false;
    let swallow = false;
    upstream.on('data', (chunk) => {
      // The server's greeting: header(4) + protocol(1) + version string + NUL + connection id (4, LE).
      if (!threadId) threadId = chunk.readUInt32LE(chunk.indexOf(0, 5) + 1);
      if (!swallow) return void client.write(chunk);
      swallow = false;
      void admin.query(`KILL CONNECTION ${threadId}`).finally(() => {
        trap.killed++;
        client.destroy();
        if (trap.thenCut) {
          cut = true;
          for (const s of sockets) s.destroy();
        }
      });
    });
    client.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      if (text.includes('INSERT INTO orders (')) insertedOrder = true;
      if (trap.armed && insertedOrder && text.includes('\u0003COMMIT')) {
        trap.armed = false;
        swallow = true;
      }
      upstream.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as AddressInfo;
  r.url = `127.0.0.1:${port}`;
  r.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((res) => server.close(res));
  };
  relays.push(r);
  return r;
}

/** An in-process API whose shard connections go through relays (same databases, same order). */
async function apiBehindRelays(): Promise<{ api: TestApi; trap: Trap }> {
  const trap: Trap = { armed: false, killed: 0 };
  const rs = await Promise.all(db.shards.map((s) => relay(s.url, s.ds, trap)));
  const urls = db.shards.map((s, i) => {
    const u = new URL(s.url.url);
    u.host = rs[i].url;
    return u.toString();
  });
  return { api: await startApi({ ...COMMON, DB_SHARD_URLS: urls.join(',') }), trap };
}

// ------------------------------------------------------------------ tests

describe('POST /orders crash windows', () => {
  it('a claimer killed after claiming does not block a retry after the lease', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const key = `crash-${randomUUID()}`;
    const child = await startChild('after-claim');
    await expect(post(child.url, user.token, [{ productId: p, quantity: 2 }], key)).rejects.toThrow();
    expect(await child.exited).toBe('SIGKILL');
    expect(await keyRow(user.id, key)).toEqual({ status: 'pending' }); // the dead claimer's key is still there

    const retry = await post(api.url, user.token, [{ productId: p, quantity: 2 }], key);
    expect(retry.status).toBe(201);
    const order = await json(retry);
    expect(await ordersOf(user.id)).toEqual([order.id]);
    expect(await stockOf(p)).toBe(8);
    const again = await post(api.url, user.token, [{ productId: p, quantity: 2 }], key);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(again)).id).toBe(order.id);
  }, 60_000);

  it('a process killed between stock reservation and the shard write leaks no stock after reconcile', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const key = `crash-${randomUUID()}`;
    const child = await startChild('after-reserve');
    await expect(post(child.url, user.token, [{ productId: p, quantity: 3 }], key)).rejects.toThrow();
    expect(await child.exited).toBe('SIGKILL');
    expect(await stockOf(p)).toBe(7); // reserved, and nobody left to write the order
    const [dead] = await reservations(p);
    expect(dead).toMatchObject({ state: 'reserved', quantity: 3 });
    expect(await ordersOf(user.id)).toEqual([]);

    await reconcileUntilSettled([p]);
    expect(await reservations(p)).toEqual([{ ...dead, state: 'released' }]);
    expect(await stockOf(p)).toBe(10);
    expect(await keyRow(user.id, key)).toBeNull(); // fenced: the dead attempt can never write its order

    // The client's retry places the order once; reconciling again gives nothing back twice.
    const retry = await post(api.url, user.token, [{ productId: p, quantity: 3 }], key);
    expect(retry.status).toBe(201);
    expect(await ordersOf(user.id)).toEqual([(await json(retry)).id]);
    await reconciler.reconcileOnce({ olderThanMs: 0 });
    expect(await stockOf(p)).toBe(7);
    expect((await reservations(p)).map((r) => r.state)).toEqual(['released', 'committed']);
  }, 60_000);

  it('the background reconciler gives a dead attempt\'s stock back without being asked', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const child = await startChild('after-reserve');
    await expect(post(child.url, user.token, [{ productId: p, quantity: 6 }], `crash-${randomUUID()}`)).rejects.toThrow();
    expect(await child.exited).toBe('SIGKILL');
    expect(await stockOf(p)).toBe(4);
    const sweeping = await startApi({ ...COMMON, ORDER_RECONCILE_INTERVAL_S: '1' });
    try {
      await waitFor(async () => (await stockOf(p)) === 10, 30_000, 200);
      expect((await reservations(p)).map((r) => r.state)).toEqual(['released']);
    } finally {
      await sweeping.close();
    }
  }, 60_000);

  it('a process killed after the shard commit keeps its order: the retry replays it and reconcile commits the stock', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const key = `crash-${randomUUID()}`;
    const child = await startChild('after-shard-commit');
    await expect(post(child.url, user.token, [{ productId: p, quantity: 4 }], key)).rejects.toThrow();
    expect(await child.exited).toBe('SIGKILL');
    const [orderId] = await ordersOf(user.id);
    expect(orderId).toBeDefined();
    expect((await reservations(p)).map((r) => r.state)).toEqual(['reserved']);

    const retry = await post(api.url, user.token, [{ productId: p, quantity: 4 }], key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(retry)).id).toBe(orderId);
    await reconcileUntilSettled([p]);
    expect(await reservations(p)).toEqual([{ id: orderId, state: 'committed', quantity: 4 }]);
    expect(await stockOf(p)).toBe(6);
  }, 60_000);

  it('a lost commit acknowledgement does not release stock for an order that exists', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const key = `crash-${randomUUID()}`;
    const behind = await apiBehindRelays();
    try {
      behind.trap.armed = true;
      const res = await post(behind.api.url, user.token, [{ productId: p, quantity: 5 }], key);
      expect(behind.trap.killed).toBe(1); // the COMMIT's answer was lost
      // The API asked the shard: the order exists, so it stands and the stock stays taken.
      expect(res.status).toBe(201);
      const order = await json(res);
      expect(await ordersOf(user.id)).toEqual([order.id]);
      expect(await stockOf(p)).toBe(5);
      expect(await reservations(p)).toEqual([{ id: order.id, state: 'committed', quantity: 5 }]);
      expect(await keyRow(user.id, key)).toEqual({ status: 'done' });
      await reconciler.reconcileOnce({ olderThanMs: 0 });
      expect(await stockOf(p)).toBe(5);
    } finally {
      await behind.api.close();
    }
  }, 60_000);

  it('when the shard cannot be asked after a lost acknowledgement, the stock is left to the reconciler, which keeps it for the order', async () => {
    const user = await signUp(api);
    const p = await product(10);
    const key = `crash-${randomUUID()}`;
    const behind = await apiBehindRelays();
    try {
      behind.trap.armed = true;
      behind.trap.thenCut = true;
      const res = await post(behind.api.url, user.token, [{ productId: p, quantity: 3 }], key);
      expect(behind.trap.killed).toBe(1);
      expect(res.status).toBe(503);
      expect((await json(res)).error.code).toBe('order_write_unconfirmed');
    } finally {
      await behind.api.close();
    }
    // No guess was made: the stock is still reserved, and the order did commit.
    expect(await stockOf(p)).toBe(7);
    expect((await reservations(p)).map((r) => r.state)).toEqual(['reserved']);
    const [orderId] = await ordersOf(user.id);
    expect(orderId).toBeDefined();
    await reconcileUntilSettled([p]);
    expect(await reservations(p)).toEqual([{ id: orderId, state: 'committed', quantity: 3 }]);
    expect(await stockOf(p)).toBe(7);
    // And the client's retry gets the order that exists.
    expect((await json(await post(api.url, user.token, [{ productId: p, quantity: 3 }], key))).id).toBe(orderId);
  }, 60_000);

  it('after every crash point, stock reconciles against orders: 0 leaked, 0 oversold', async () => {
    const STOCK = 500;
    const products = [await product(STOCK), await product(STOCK), await product(STOCK)];
    const users = await Promise.all(Array.from({ length: 10 }, () => signUp(api)));
    let seed = 7;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), (seed >>> 16) % n);
    const intents: { user: (typeof users)[number]; key: string; items: { productId: string; quantity: number }[] }[] = [];
    const round = async (url: string) => {
      const batch = users.map((user) => ({
        user,
        key: `crash-${randomUUID()}`,
        items: products.filter(() => rnd(2) === 0).concat(products[rnd(3)]).filter((p, i, a) => a.indexOf(p) === i).map((productId) => ({ productId, quantity: 1 + rnd(3) })),
      }));
      intents.push(...batch);
      // All at once: the first request to reach the crash point kills the process, the others die wherever they are.
      return Promise.allSettled(batch.map((o) => post(url, o.user.token, o.items, o.key)));
    };

    for (const point of ['after-claim', 'after-reserve', 'after-shard-commit']) {
      const child = await startChild(point);
      await round(child.url);
      expect(await child.exited).toBe('SIGKILL');
    }
    const behind = await apiBehindRelays();
    try {
      behind.trap.armed = true;
      const answers = await round(behind.api.url);
      expect(behind.trap.killed).toBe(1);
      expect(answers.every((a) => a.status === 'fulfilled' && a.value.status === 201)).toBe(true);
    } finally {
      await behind.api.close();
    }

    // Every client retries its key against a fresh instance: each intent becomes exactly one order.
    const retried = await Promise.all(intents.map(async (o) => ({ o, res: await post(api.url, o.user.token, o.items, o.key) })));
    expect(retried.map((r) => r.res.status)).toEqual(intents.map(() => 201));
    const placed = await Promise.all(retried.map(async (r) => (await json(r.res)).id as string));
    expect(new Set(placed).size).toBe(intents.length);
    for (const u of users) {
      expect((await ordersOf(u.id)).sort()).toEqual(placed.filter((_, i) => intents[i].user === u).sort());
    }

    await reconcileUntilSettled(products);
    for (const p of products) {
      const sold = STOCK - (await stockOf(p));
      const ordered = await orderedUnits(p);
      const wanted = intents.reduce((n, o) => n + (o.items.find((i) => i.productId === p)?.quantity ?? 0), 0);
      // 0 leaked (no stock taken without an order) and 0 oversold (no order without its stock).
      expect({ p, sold, ordered }).toEqual({ p, sold: wanted, ordered: wanted });
      const rs = await reservations(p);
      expect(rs.filter((r) => r.state === 'committed').reduce((n, r) => n + r.quantity, 0)).toBe(wanted);
      expect(rs.filter((r) => r.state === 'reserved')).toEqual([]);
    }
  }, 180_000);
});

/**
 * The catalog on a 3-node Galera cluster (DB_CATALOG_MODE=galera): the same catalog behaviour as on the
 * replicated catalog — a product written, then read back with the write's token on any node; orders placed
 * (stock reserved on the cluster, orders on the unchanged shards) — plus what is Galera's own: reads spread
 * over every node, read-your-writes by wsrep_sync_wait instead of a GTID wait, /health showing each node's
 * wsrep state, and the cost of multi-primary writes (a certification conflict is a deadlock error, 1213).
 * The cluster is the stack's optional one (docker/local/galera.mjs on :3320-3322), started here when it does
 * not run; this file never kills a node (galera.chaos.spec.ts does, on a private cluster).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { DbNodes, GaleraMonitor, GaleraRouter, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import { bearer, createAdmin, json, signUp, startGaleraCatalog, TEST_DB_ADMIN, type GaleraCatalog, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

let cluster: GaleraCatalog;
let api: TestApi;
let admin: { token: string };
let code: string;

beforeAll(async () => {
  cluster = await startGaleraCatalog();
  api = await startApi({ ...cluster.overrides, CACHE_MODE: 'off', REPLICA_MONITOR_INTERVAL_MS: '200' }); // every read reaches the router
  admin = await createAdmin(api);
  code = `gal-${randomUUID().slice(0, 8)}`;
  await api.app.get(DbNodes).primary.ds.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'galera', '{"type":"object"}')`, [code]);
}, 240_000);

afterAll(async () => {
  await api?.close();
});

const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = bearer(admin.token)) =>
  fetch(`${api.url}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });

async function newProduct(stock = 1, priceCents = 100): Promise<string> {
  const res = await send('POST', '/products', { categoryCode: code, name: 'Galera', priceCents, stock, attributes: {} });
  expect(res.status).toBe(201);
  return (await json(res)).id;
}

/** db_reads_total per node, from /metrics. */
async function readsByNode(): Promise<Record<string, number>> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^db_reads_total\{node="([^"]+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
}

describe('the API on a Galera catalog', () => {
  it('when DB_CATALOG_MODE=galera, then the services get the Galera router and monitor, with the three nodes as one catalog', () => {
    expect(api.app.get(ReplicaRouter)).toBeInstanceOf(GaleraRouter);
    expect(api.app.get(ReplicaMonitor)).toBeInstanceOf(GaleraMonitor);
    expect(api.app.get(DbNodes).catalog.map((n) => n.name)).toEqual(['galera-1', 'galera-2', 'galera-3']);
  });

  it('when a product is written and read back with the write token 30 times, then every read sees its write, and token reads run with wsrep_sync_wait (on every node)', async () => {
    const id = await newProduct();
    const before = await readsByNode();
    let stale = 0;
    for (let price = 1; price <= 30; price++) {
      const w = await send('PATCH', `/products/${id}`, { priceCents: price });
      expect(w.status).toBe(200);
      const token = w.headers.get('x-consistency-token');
      expect(token).toMatch(/^\d+-\d+-\d+/);
      const r = await fetch(`${api.url}/products/${id}`, { headers: { 'x-consistency-token': token! } });
      expect(r.status).toBe(200);
      if ((await json(r)).priceCents !== price) stale++;
    }
    expect(stale).toBe(0);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(Number(/^db_token_reads_total\{result="sync_wait"\} (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThanOrEqual(30);
    // Reads round-robin over all three nodes, the writer included.
    const after = await readsByNode();
    for (const n of ['galera-1', 'galera-2', 'galera-3']) expect((after[n] ?? 0) - (before[n] ?? 0)).toBeGreaterThan(0);
  });

  it('when a user orders, then the order is placed (stock reserved on the cluster, the order on its shard) and every node shows the new stock', async () => {
    const id = await newProduct(5, 700);
    const user = await signUp(api);
    const res = await fetch(`${api.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID(), ...bearer(user.token) },
      body: JSON.stringify({ items: [{ productId: id, quantity: 2 }] }),
    });
    expect(res.status).toBe(201);
    expect(await json(res)).toMatchObject({ userId: user.id, status: 'placed', totalCents: 1400, shard: expect.stringMatching(/^shard-\d$/) });
    // A commit returns once the group has certified it; applying on the other nodes is asynchronous, so the
    // check reads with wsrep_sync_wait (exact, not timed).
    for (const n of ['galera-1', 'galera-2', 'galera-3'] as const) {
      const [row] = await cluster.sql(n, 'SET STATEMENT wsrep_sync_wait = 1 FOR SELECT stock FROM products WHERE id = ?', [id]);
      expect(Number(row.stock)).toBe(3);
    }
  });

  it('GET /health: the three Galera nodes with wsrep_cluster_size 3 and wsrep_local_state_comment Synced, one of them taking writes', async () => {
    const res = await fetch(`${api.url}/health`);
    expect(res.status).toBe(200);
    const body = await json(res);
    const galera = body.nodes.filter((n: { role: string }) => n.role === 'galera');
    expect(galera.map((n: { name: string }) => n.name)).toEqual(['galera-1', 'galera-2', 'galera-3']);
    for (const n of galera) {
      expect(n).toMatchObject({ status: 'up', ready: true, wsrep: { wsrep_cluster_size: 3, wsrep_local_state_comment: 'Synced', wsrep_cluster_status: 'Primary' } });
    }
    expect(galera.filter((n: { wsrep: { writer: boolean } }) => n.wsrep.writer)).toHaveLength(1);
  });
});

describe('what multi-primary writes cost', () => {
  it('when two nodes update the same row in concurrent transactions, then the second commit fails certification with a deadlock error (1213) the app must retry', async () => {
    const id = await newProduct();
    const [a, b] = await Promise.all(['galera-1', 'galera-2'].map((n) => createConnection({ uri: cluster.url(n as 'galera-1', TEST_DB_ADMIN) })));
    try {
      await a.query('START TRANSACTION');
      await b.query('START TRANSACTION');
      await a.query('UPDATE products SET price_cents = 11 WHERE id = ?', [id]);
      await b.query('UPDATE products SET price_cents = 22 WHERE id = ?', [id]); // no lock wait: the other node's lock is not seen here
      await a.query('COMMIT');
      const err = await b.query('COMMIT').then(() => null, (e: { errno?: number }) => e);
      expect(err?.errno).toBe(1213);
      const [rows] = await b.query<any[]>('SELECT price_cents AS p FROM products WHERE id = ?', [id]);
      expect(Number(rows[0].p)).toBe(11); // the first committer won on every node
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });
});

/**
 * The API follows a new catalog primary without a restart, on a private catalog (libs/testing
 * startPrivateCatalog: primary + 2 replicas on 4317-4319, its own STACK_DIR) so the shared :3307-:3309 are
 * never promoted; shards and Redis are the shared ones (this file's TEST_DB_NAME). The operator's commands
 * (`stack.mjs promote|failover`) change the roles; the API learns them from the servers (ReplicaMonitor reads
 * read_only and replication status of every catalog node).
 * A write + read-your-writes loop runs through both changes: PATCH a product's price, then GET it with the
 * X-Consistency-Token the PATCH answered.
 *  - planned switchover: writes answer 200 or a retryable 503 (never a 500), then land on the new primary;
 *    0 stale token reads; a token from before the switchover still reads its write.
 *  - the read-only window (old primary read_only, nothing promoted yet): its own tokens are still accepted.
 *  - unplanned failover (switch back to the configured primary, then SIGKILL it): same, every acknowledged
 *    write the new primary had applied is there (GTID check), asynchronous replication can lose only the dead
 *    primary's unshipped tail, and orders resume (stock reservation and bucket map on the new primary).
 * The write outage is printed here; `npm run bench -- catalog-failover` measures it into a result file.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { DbNodes, migrateAll } from '#libs/db';
import { bearer, createAdmin, json, signUp, startPrivateCatalog, TEST_DB, TEST_DB_ADMIN, testConfig, waitFor, type CatalogNodeName, type PrivateCatalog, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

const APP = { user: 'mallscale_app', password: 'mallscale_app' };
let cat: PrivateCatalog;
let api: TestApi;
let admin: { token: string };
let code: string;
let overrides: Record<string, string>;

beforeAll(async () => {
  cat = await startPrivateCatalog(4317);
  overrides = {
    DB_PRIMARY_URL: cat.url('primary', APP, TEST_DB),
    DB_REPLICA_URLS: `${cat.url('replica-1', APP, TEST_DB)},${cat.url('replica-2', APP, TEST_DB)}`,
    REPLICA_MONITOR_INTERVAL_MS: '200',
    CACHE_MODE: 'off', // every read reaches ReplicaRouter
  };
  await migrateAll(testConfig(overrides), () => undefined);
  api = await startApi(overrides);
  admin = await createAdmin(api);
  code = `fo-${randomUUID().slice(0, 8)}`;
  await api.app.get(DbNodes).primary.ds.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'failover', '{"type":"object"}')`, [code]);
}, 240_000);

afterAll(async () => {
  await api?.close();
  await cat?.destroy();
}, 120_000);

const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = bearer(admin.token)) =>
  fetch(`${api.url}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });

interface Loop {
  acked: Array<{ price: number; token: string; at: number }>;
  statuses: Map<number, number>;
  stale: number;
  readStatuses: Map<number, number>;
  bodies503: unknown[];
  /** Token reads answered neither 200 nor a retryable 503 (e.g. a token refused as ahead of the primary). */
  readErrors: unknown[];
  /** Longest time between two acknowledged writes (ms): the write outage as a client sees it. */
  outageMs(): number;
  stop(): Promise<void>;
}

/** PATCH price = 1, 2, 3… and read each acknowledged write back with its token, until stopped. */
function rywLoop(id: string, from: number): Loop {
  const l: Loop = {
    acked: [], statuses: new Map(), readStatuses: new Map(), stale: 0, bodies503: [], readErrors: [],
    outageMs: () => l.acked.slice(1).reduce((m, a, i) => Math.max(m, a.at - l.acked[i].at), 0),
    stop: async () => { stop = true; await done; },
  };
  let stop = false;
  const count = (m: Map<number, number>, s: number) => m.set(s, (m.get(s) ?? 0) + 1);
  const done = (async () => {
    for (let price = from; !stop; price++) {
      const w = await send('PATCH', `/products/${id}`, { priceCents: price });
      count(l.statuses, w.status);
      if (w.status !== 200) {
        if (w.status === 503 && l.bodies503.length < 3) l.bodies503.push({ body: await w.json(), retryAfter: w.headers.get('retry-after') });
        else await w.arrayBuffer();
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      await w.arrayBuffer();
      const token = w.headers.get('x-consistency-token')!;
      l.acked.push({ price, token, at: Date.now() });
      const r = await fetch(`${api.url}/products/${id}`, { headers: { 'x-consistency-token': token } });
      count(l.readStatuses, r.status);
      if (r.status === 200 && ((await r.json()) as { priceCents: number }).priceCents !== price) l.stale++;
      else if (r.status === 503) await r.arrayBuffer(); // a token read no replica could serve, while the primary is dead
      else if (r.status !== 200) l.readErrors.push({ status: r.status, token, body: await r.text(), at: Date.now() });
    }
  })();
  return l;
}

/** Sign-ups (users.repository writes on the primary directly, not through the router) until stopped; statuses. */
function signUpLoop() {
  const statuses = new Map<number, number>();
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const res = await fetch(`${api.url}/auth/sign-up`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: `fo-${randomUUID()}@test.mallscale`, password: 'password-123' }) });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  })();
  return { stop: async () => ((stop = true), await done, statuses) };
}

async function newProduct(): Promise<string> {
  const res = await send('POST', '/products', { categoryCode: code, name: 'Failover', priceCents: 1, stock: 1, attributes: {} });
  expect(res.status).toBe(201);
  return (await json(res)).id;
}
const priceOn = async (node: CatalogNodeName, id: string) => {
  const c = await createConnection({ uri: cat.url(node, TEST_DB_ADMIN, TEST_DB) });
  try {
    const [rows] = await c.query<RowDataPacket[]>('SELECT price_cents AS p FROM products WHERE id = ?', [id]);
    return Number(rows[0]?.p);
  } finally {
    await c.end();
  }
};

function expectNo500(l: Loop) {
  expect(l.readErrors).toEqual([]);
  expect([...l.statuses.keys()].filter((s) => s !== 200 && s !== 503)).toEqual([]);
  expect([...l.readStatuses.keys()].filter((s) => s !== 200 && s !== 503)).toEqual([]);
  for (const b of l.bodies503) {
    expect(b).toMatchObject({ body: { error: { status: 503, code: 'unavailable', message: expect.stringMatching(/primary/) } }, retryAfter: '1' });
  }
}

describe('the read-only window of a switchover (old primary read_only, no node promoted yet)', () => {
  it('when the primary is read-only and not yet repointed (and a replica is writable by mistake), then a token it issued is still accepted and read, writes answer a retryable 503, and the API keeps its primary', async () => {
    const id = await newProduct();
    const d = api.app.get(DbNodes).primary.dialect; // the server's own statements
    // The replicas must not vouch for the token (they would if they had applied it): hold their SQL threads.
    for (const r of ['replica-1', 'replica-2'] as const) await cat.rootSql(r, d.stopReplicaSql('SQL_THREAD'));
    try {
      const patched = await send('PATCH', `/products/${id}`, { priceCents: 7 });
      expect(patched.status).toBe(200);
      const token = patched.headers.get('x-consistency-token')!;
      await cat.rootSql('primary', d.sql.readOnly(true));
      // A replica left writable by mistake is no primary while it still replicates: the monitor must not pick it.
      await cat.rootSql('replica-2', d.sql.readOnly(false));
      await new Promise((r) => setTimeout(r, 1200)); // the monitor samples the read-only primary; older positions age out
      const read = await fetch(`${api.url}/products/${id}`, { headers: { 'x-consistency-token': token } });
      expect(read.status).toBe(200);
      expect(((await read.json()) as { priceCents: number }).priceCents).toBe(7);
      const write = await send('PATCH', `/products/${id}`, { priceCents: 8 });
      expect(write.status).toBe(503);
      expect(write.headers.get('retry-after')).toBe('1');
      expect(api.app.get(DbNodes).primary.name).toBe('primary'); // no writable non-replica node: the monitor changes nothing
    } finally {
      await cat.rootSql('primary', d.sql.readOnly(false));
      await cat.rootSql('replica-2', d.sql.readOnly(true));
      for (const r of ['replica-1', 'replica-2'] as const) await cat.rootSql(r, d.startReplicaSql('SQL_THREAD'));
    }
  }, 60_000);
});

describe('catalog switchover (stack promote replica-1) under a write + read-your-writes loop', () => {
  it('when replica-1 is promoted, then the API writes to it without a restart, a write in flight gets a retryable 503 (never a 500), and no token read is stale', async () => {
    const id = await newProduct();
    const loop = rywLoop(id, 100);
    const signUps = signUpLoop(); // a write outside ReplicaRouter.write (users): 201 or 503 too
    await waitFor(async () => loop.acked.length >= 30, 30_000);
    const before = loop.acked.at(-1)!;
    const r = await cat.promote('replica-1');
    expect(r.primary).toBe('replica-1');
    const n = loop.acked.length;
    await waitFor(async () => loop.acked.length >= n + 30, 30_000);
    await loop.stop();
    const signUpStatuses = await signUps.stop();
    expect([...signUpStatuses.keys()].filter((s) => s !== 201 && s !== 503)).toEqual([]);
    expect(signUpStatuses.get(201)).toBeGreaterThan(0);

    expect(api.app.get(DbNodes).primary.name).toBe('replica-1');
    expectNo500(loop);
    expect(loop.stale).toBe(0);
    // The last acknowledged price is on the new primary: writes landed there.
    expect(await priceOn('replica-1', id)).toBe(loop.acked.at(-1)!.price);
    // A token from before the switchover still reads (at least) its write.
    const old = await json(await fetch(`${api.url}/products/${id}`, { headers: { 'x-consistency-token': before.token } }));
    expect(old.priceCents).toBeGreaterThanOrEqual(before.price);
    console.log(`switchover: write outage ${loop.outageMs()} ms (read-only window ${r.readOnlyMs} ms), statuses ${JSON.stringify([...loop.statuses])}`);
  }, 120_000);
});

describe('catalog failover (SIGKILL of the primary, then stack failover)', () => {
  it('when the primary is killed and the most advanced replica promoted, then the API follows, writes resume, no acknowledged write the new primary applied is lost and no token read is stale', async () => {
    // Switch back first, so the node killed is the one DB_PRIMARY_URL names (the API keeps running without it).
    await cat.promote('primary');
    await waitFor(async () => api.app.get(DbNodes).primary.name === 'primary', 10_000);
    const id = await newProduct();
    const was = api.app.get(DbNodes).primary.name as CatalogNodeName;
    // `before` stops at the kill (its last acknowledged write is what the GTID check below is about);
    // `through` runs on another product across the kill and the failover.
    const before = rywLoop(id, 10_000);
    const through = rywLoop(await newProduct(), 50_000);
    await waitFor(async () => before.acked.length >= 30, 30_000);
    const killAt = Date.now();
    await cat.cli('kill', was);
    await before.stop(); // writes in flight at the kill answer 503
    const r = await cat.failover();
    expect(r.previous).toBe(was);
    expect(r.primary).not.toBe(was);

    // GTID check: an acknowledged write is lost only if the promoted node never got its transaction (the
    // dead primary's unshipped tail); every other one is there, so the row holds the newest of them.
    const dialect = api.app.get(DbNodes).primary.dialect;
    const kept = before.acked.filter((a) => dialect.gtidCovers(r.gtid, a.token));
    const lost = before.acked.filter((a) => !dialect.gtidCovers(r.gtid, a.token));
    expect(kept.length).toBeGreaterThan(0);
    expect(await priceOn(r.primary, id)).toBe(kept.at(-1)!.price);
    if (lost.length) expect(lost[0].price).toBeGreaterThan(kept.at(-1)!.price); // only a tail, never a hole

    const after = rywLoop(id, 20_000);
    await waitFor(async () => after.acked.length >= 30, 30_000);
    await after.stop();
    await through.stop();
    expect(api.app.get(DbNodes).primary.name).toBe(r.primary);
    expect(through.acked.filter((a) => a.at > killAt).length).toBeGreaterThan(0);
    expect(through.statuses.get(503)).toBeGreaterThan(0); // the dead window was seen, as 503s
    for (const l of [before, after, through]) {
      expectNo500(l);
      expect(l.stale).toBe(0);
    }
    expect(await priceOn(r.primary, id)).toBe(after.acked.at(-1)!.price);
    // A token from before the failover that the new primary has still reads its write.
    const old = await json(await fetch(`${api.url}/products/${id}`, { headers: { 'x-consistency-token': kept.at(-1)!.token } }));
    expect(old.priceCents).toBeGreaterThanOrEqual(kept.at(-1)!.price);
    // Orders resume: the stock reservation (catalog primary) and the bucket map follow the new primary.
    const buyer = await signUp(api);
    const order = await fetch(`${api.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID(), ...bearer(buyer.token) }, body: JSON.stringify({ items: [{ productId: id, quantity: 1 }] }) });
    expect(order.status).toBe(201);
    console.log(`failover: write outage ${through.outageMs()} ms (failover command ${r.totalMs} ms), ${lost.length} of ${before.acked.length} acknowledged writes lost with the dead primary, statuses ${JSON.stringify([...through.statuses])}`);
  }, 180_000);
});

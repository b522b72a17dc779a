/**
 * Losing a Galera node under writes, on a private 3-node cluster (its own directory and ports 4330-4332, so no
 * one else's node is killed); shards and Redis are the shared ones. A write + read-your-writes loop (PATCH a
 * price, GET it with the write's token) and a create loop (POST /products) run through each kill:
 *  - SIGKILL of the node taking the API's writes: writes move to the next node (a write in flight answers a
 *    retryable 503, never a 500), no acknowledged write is missing on the survivors, no token read is stale;
 *  - the killed node restarts, rejoins by IST (only the write sets it missed) and serves reads again;
 *  - SIGKILL of a node that only serves reads: writes continue on the writer (they stall until the group
 *    evicts the dead member: evs.suspect_timeout), reads go to the survivors.
 * The write outage is printed here; `npm run bench -- galera` measures it into a result file.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DbNodes, ReplicaMonitor } from '#libs/db';
import { bearer, createAdmin, json, signUp, startGaleraCatalog, waitFor, type GaleraCatalog, type GaleraNodeName, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

let cluster: GaleraCatalog;
let api: TestApi;
let admin: { token: string };
let code: string;

beforeAll(async () => {
  cluster = await startGaleraCatalog({ dir: await mkdtemp(join(tmpdir(), 'mallscale-galera-')), basePort: 4330 });
  api = await startApi({ ...cluster.overrides, CACHE_MODE: 'off', REPLICA_MONITOR_INTERVAL_MS: '200' });
  admin = await createAdmin(api);
  code = `galc-${randomUUID().slice(0, 8)}`;
  await api.app.get(DbNodes).primary.ds.query(`INSERT INTO categories (code, name, attribute_schema) VALUES (?, 'galera chaos', '{"type":"object"}')`, [code]);
}, 240_000);

afterAll(async () => {
  await api?.close();
  await cluster?.down(true);
}, 120_000);

const send = (method: string, path: string, body?: unknown) =>
  fetch(`${api.url}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...bearer(admin.token) }, body: body === undefined ? undefined : JSON.stringify(body) });

interface Loop {
  acked: Array<{ value: number | string; at: number }>;
  statuses: Map<number, number>;
  stale: number;
  others: unknown[];
  /** Longest time between two acknowledged writes (ms): the write outage as a client sees it. */
  outageMs(): number;
  stop(): Promise<void>;
}
function loop(step: (l: Loop, i: number) => Promise<void>): Loop {
  let stop = false;
  const l: Loop = {
    acked: [], statuses: new Map(), stale: 0, others: [],
    outageMs: () => l.acked.slice(1).reduce((m, a, i) => Math.max(m, a.at - l.acked[i].at), 0),
    stop: async () => { stop = true; await done; },
  };
  const done = (async () => {
    for (let i = 1; !stop; i++) await step(l, i);
  })();
  return l;
}
const count = (l: Loop, status: number) => l.statuses.set(status, (l.statuses.get(status) ?? 0) + 1);

/** PATCH price = from, from+1, … and read each acknowledged write back with its token. */
function rywLoop(id: string, from: number): Loop {
  return loop(async (l, i) => {
    const price = from + i;
    const w = await send('PATCH', `/products/${id}`, { priceCents: price });
    count(l, w.status);
    if (w.status !== 200) {
      if (w.status !== 503) l.others.push({ status: w.status, body: await w.text() });
      else await w.arrayBuffer();
      return;
    }
    await w.arrayBuffer();
    l.acked.push({ value: price, at: Date.now() });
    const r = await fetch(`${api.url}/products/${id}`, { headers: { 'x-consistency-token': w.headers.get('x-consistency-token')! } });
    if (r.status === 200) {
      if ((await json(r)).priceCents !== price) l.stale++;
    } else if (r.status === 503) await r.arrayBuffer();
    else l.others.push({ read: r.status, body: await r.text() });
  });
}

/** POST /products until stopped; every 201's id is an acknowledged write that must survive. */
function createLoop(): Loop {
  return loop(async (l) => {
    const res = await send('POST', '/products', { categoryCode: code, name: 'Galera chaos', priceCents: 1, stock: 1, attributes: {} });
    count(l, res.status);
    if (res.status === 201) l.acked.push({ value: (await json(res)).id, at: Date.now() });
    else if (res.status === 503) await res.arrayBuffer();
    else l.others.push({ status: res.status, body: await res.text() });
  });
}

async function newProduct(): Promise<string> {
  const res = await send('POST', '/products', { categoryCode: code, name: 'Galera chaos', priceCents: 1, stock: 10, attributes: {} });
  expect(res.status).toBe(201);
  return (await json(res)).id;
}

/** On `node`, after it applied everything committed cluster-wide: how many of `ids` exist, and a price. */
const idsOn = async (node: GaleraNodeName, ids: string[]) =>
  Number((await cluster.sql(node, `SET STATEMENT wsrep_sync_wait = 1 FOR SELECT COUNT(*) AS n FROM products WHERE id IN (${ids.map(() => '?').join(',')})`, ids))[0].n);
const priceOn = async (node: GaleraNodeName, id: string) => Number((await cluster.sql(node, 'SET STATEMENT wsrep_sync_wait = 1 FOR SELECT price_cents AS p FROM products WHERE id = ?', [id]))[0].p);

function expectNoErrors(...loops: Loop[]) {
  for (const l of loops) {
    expect(l.others).toEqual([]);
    expect([...l.statuses.keys()].filter((s) => s !== 200 && s !== 201 && s !== 503)).toEqual([]);
    expect(l.stale).toBe(0);
  }
}

const readsOf = async (node: string) => Number(new RegExp(`^db_reads_total\\{node="${node}"\\} (\\d+)`, 'm').exec(await (await fetch(`${api.url}/metrics`)).text())?.[1] ?? 0);

describe('Galera: SIGKILL of the node taking writes', () => {
  it('when the writer is killed under writes, then writes continue on another node, no acknowledged write is lost and no token read is stale', async () => {
    const db = api.app.get(DbNodes);
    const writer = db.primary.name as GaleraNodeName;
    expect(writer).toBe('galera-1');
    await cluster.settled();
    const id = await newProduct();
    const ryw = rywLoop(id, 1000);
    const creates = createLoop();
    await waitFor(async () => ryw.acked.length >= 20 && creates.acked.length >= 20, 30_000);
    const killAt = Date.now();
    await cluster.kill(writer);
    await waitFor(async () => ryw.acked.filter((a) => a.at > killAt).length >= 20 && creates.acked.filter((a) => a.at > killAt).length >= 20, 60_000);
    await ryw.stop();
    await creates.stop();

    expect(db.primary.name).not.toBe(writer);
    expectNoErrors(ryw, creates);
    const survivors = (['galera-1', 'galera-2', 'galera-3'] as const).filter((n) => n !== writer);
    const ids = creates.acked.map((a) => String(a.value));
    for (const n of survivors) {
      expect(await idsOn(n, ids)).toBe(ids.length); // every acknowledged insert, before and after the kill
      expect(await priceOn(n, id)).toBe(ryw.acked.at(-1)!.value); // the newest acknowledged price
    }
    // Orders resume: the stock reservation runs on the new writer.
    const buyer = await signUp(api);
    const order = await fetch(`${api.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID(), ...bearer(buyer.token) }, body: JSON.stringify({ items: [{ productId: id, quantity: 1 }] }) });
    expect(order.status).toBe(201);
    console.log(`galera writer kill: write outage ${ryw.outageMs()} ms (creates ${creates.outageMs()} ms), statuses ${JSON.stringify([...ryw.statuses])} ${JSON.stringify([...creates.statuses])}, writes now on ${db.primary.name}`);
  }, 180_000);

  it('when the killed node is started again, then it rejoins by IST (not a full snapshot), holds every write it missed, and serves reads again', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await newProduct()); // written while galera-1 is down
    const st = await cluster.start('galera-1');
    expect(st.state).toBe('up');
    expect(cluster.lastStateTransfer('galera-1')).toBe('IST');
    expect(await idsOn('galera-1', ids)).toBe(ids.length);
    const monitor = api.app.get(ReplicaMonitor);
    await waitFor(async () => monitor.health('galera-1')?.inRotation, 15_000);
    const before = await readsOf('galera-1');
    for (let i = 0; i < 30; i++) expect((await fetch(`${api.url}/products/${ids[i % ids.length]}`)).status).toBe(200);
    expect(await readsOf('galera-1')).toBeGreaterThan(before);
    const health = await json(await fetch(`${api.url}/health`));
    const g1 = health.nodes.find((n: { name: string }) => n.name === 'galera-1');
    expect(g1).toMatchObject({ status: 'up', wsrep: { wsrep_cluster_size: 3, wsrep_local_state_comment: 'Synced', writer: false } });
  }, 180_000);
});

describe('Galera: SIGKILL of a node that only serves reads', () => {
  it('when a reader is killed under writes, then writes continue on the writer without a 5xx, token reads stay fresh, and the node rejoins by IST', async () => {
    const db = api.app.get(DbNodes);
    await cluster.settled(); // one failure at a time: a node lost seconds after a rejoin can cost the whole cluster its quorum
    const victim = db.catalog.find((n) => n !== db.primary)!.name as GaleraNodeName;
    const id = await newProduct();
    const ryw = rywLoop(id, 5000);
    await waitFor(async () => ryw.acked.length >= 20, 30_000);
    const killAt = Date.now();
    await cluster.kill(victim);
    await waitFor(async () => ryw.acked.filter((a) => a.at > killAt).length >= 30, 60_000);
    await ryw.stop();
    expectNoErrors(ryw);
    expect(ryw.statuses.get(503) ?? 0).toBe(0); // the writer lived: commits stalled until the eviction, none failed
    expect((await cluster.start(victim)).state).toBe('up');
    expect(cluster.lastStateTransfer(victim)).toBe('IST');
    expect(await priceOn(victim, id)).toBe(ryw.acked.at(-1)!.value);
    console.log(`galera reader kill: write outage ${ryw.outageMs()} ms, statuses ${JSON.stringify([...ryw.statuses])}`);
  }, 180_000);
});

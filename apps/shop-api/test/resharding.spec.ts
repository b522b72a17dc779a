/**
 * Online resharding on the real shards: a third shard, 32 buckets moved to it while two API instances (one
 * with its map invalidation delayed by an hour) place orders, the mover killed mid-copy and mid-cut-over and
 * run again, a stale router's writes and reads refused by the fence and re-routed, and moves aborted
 * mid-copy and mid-cut-over under live writes (abort refused after the map flip).
 * The topology is this spec's own (reshard-support.ts): other specs keep their two-shard map.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BucketMover, bucketOf, DutyCycle, FreezeTimedOut, OrderShardRouter, parseBucketList, rebalancePlan, BUCKETS } from '#libs/db';
import { bearer, createAdmin, json, signUp, type TestApi } from '#libs/testing';
import { StockReconciler } from '../src/orders/stock-reconciler.js';
import { allOrders, bucketMap, reshardTopology, runShards, type Topology } from './reshard-support.js';
import { startApi } from './support.js';

let topo: Topology;
let apiA: TestApi; // map cached 100 ms
let apiB: TestApi; // map cached 1 h: only the fence tells it that a bucket moved
const products: { id: string; stock: number }[] = [];
// One bucket at a time where a run is killed (so the test knows which bucket it stopped in), four in the run that finishes.
const moverEnv = { RESHARD_CHUNK_ROWS: '2', RESHARD_THROTTLE_MS: '1', RESHARD_CLEANUP_GRACE_S: '0', RESHARD_CONCURRENCY: '1' };

beforeAll(async () => {
  topo = await reshardTopology('live');
  const common = { ...topo.env, SHARD_FENCE_RETRIES: '1000', ORDER_RECONCILE_INTERVAL_S: '0' };
  apiA = await startApi({ ...common, SHARD_MAP_TTL_MS: '100' });
  apiB = await startApi({ ...common, SHARD_MAP_TTL_MS: '3600000' });
  const cat = topo.admin.primary.ds;
  await cat.query(`INSERT INTO categories (code, name, attribute_schema) VALUES ('reshard', 'Reshard goods', '{"type":"object"}')`);
  const [{ id: categoryId }] = await cat.query(`SELECT id FROM categories WHERE code = 'reshard'`);
  for (const price of [1000, 250, 4999]) {
    const res = await cat.query("INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES (?, 'reshard item', ?, 100000, '{}')", [categoryId, price]);
    products.push({ id: String(res.insertId), stock: 100000 });
  }
}, 60_000);

afterAll(async () => {
  await apiA?.close();
  await apiB?.close();
  await topo?.close();
});

function post(api: TestApi, token: string, key: string, items: { productId: string; quantity: number }[]) {
  return fetch(`${api.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key, ...bearer(token) },
    body: JSON.stringify({ items }),
  });
}

/** POST /orders until it is answered: a 503 bucket_moving is the retryable answer of a fenced bucket. */
async function placeOrder(api: TestApi, token: string, key: string, items: { productId: string; quantity: number }[]): Promise<{ status: number; body: any; fencedRetries: number }> {
  for (let n = 0; ; n++) {
    const res = await post(api, token, key, items);
    const body = await json(res);
    if (res.status === 503 && body?.error?.code === 'bucket_moving' && n < 20) continue;
    return { status: res.status, body, fencedRetries: n };
  }
}

const lineFor = (i: number) => [{ productId: products[i % 3].id, quantity: 1 + (i % 2) }];

describe('a third shard', () => {
  it('shard-2 is migrated like the others, and /admin/shards and /health show it', async () => {
    const admin = await createAdmin(apiA);
    const shards = await json(await fetch(`${apiA.url}/admin/shards`, { headers: bearer(admin.token) }));
    expect(shards.shards.map((s: any) => s.name)).toEqual(['shard-0', 'shard-1', 'shard-2']);
    expect(shards.shards[2]).toMatchObject({ host: expect.stringMatching(/:3312$/), buckets: 0 });
    expect(shards.shards[2].partitions.length).toBeGreaterThan(1); // the PartitionMaintainer ran on it
    const [identity] = await topo.admin.shards[2].ds.query('SELECT shard FROM shard_identity');
    expect(Number(identity.shard)).toBe(2);
    const health = await json(await fetch(`${apiA.url}/health`));
    expect(health.nodes.find((n: any) => n.name === 'shard-2')).toMatchObject({ role: 'shard', ready: true });
  });

  it('bucket lists and the rebalance plan', () => {
    expect(parseBucketList('3,1,5-7')).toEqual([1, 3, 5, 6, 7]);
    expect(() => parseBucketList('5-2')).toThrow(/bad bucket range/);
    expect(() => parseBucketList('1024')).toThrow(/0-1023/);
    const two = Array.from({ length: BUCKETS }, (_, b) => b % 2);
    const plan = rebalancePlan(two, 3);
    expect(plan.every((p) => p.to === 2)).toBe(true);
    expect(plan.length).toBe(341); // 1024 / 3, shard-0 keeps one more
    const after = [...two];
    for (const p of plan) after[p.bucket] = p.to;
    expect([0, 1, 2].map((s) => after.filter((x) => x === s).length)).toEqual([342, 341, 341]);
  });

  it("the mover's duty cycle: a step's rest is in proportion to the time it took (a busy shard slows the copy), never below RESHARD_THROTTLE_MS; a share outside (0, 100] is refused", () => {
    const quarter = new DutyCycle(25, 5);
    expect(quarter.restFor(100)).toBe(300); // busy 100 of every 400 ms
    expect(quarter.restFor(400)).toBe(1200); // the same chunk on a shard 4x busier rests 4x longer
    expect(quarter.restFor(1)).toBe(5); // the least rest
    const half = new DutyCycle(50, 0);
    expect(half.restFor(80)).toBe(80);
    const off = new DutyCycle(100, 0);
    expect(off.restFor(1000)).toBe(0);
    expect(() => new DutyCycle(0, 0)).toThrow(/share must be in \(0, 100\]/);
    expect(() => new DutyCycle(101, 0)).toThrow(/share must be in \(0, 100\]/);
  });

  it('the shards tool: status, a rebalance dry run, and bad input refused with a clear message; nothing changes', async () => {
    const bad = [
      [['move', '--buckets', '1,x', '--to', '2'], /bad bucket list/],
      [['move', '--buckets', '1', '--to', '7'], /--to 7: DB_SHARD_URLS lists 3 shards/],
    ] as const;
    const [status, rebalance, ...runs] = await Promise.all([
      runShards(topo, ['status']),
      runShards(topo, ['rebalance', '--to-shards', '3', '--dry-run']),
      ...bad.map(([args]) => runShards(topo, [...args])),
    ]);
    for (const [i, [args, message]] of bad.entries()) {
      expect({ args, code: runs[i].code }).toEqual({ args, code: 2 });
      expect(runs[i].stderr).toMatch(message);
    }
    expect(status.stdout).toContain('map version 1; buckets per shard: shard-0=512 shard-1=512 shard-2=0');
    expect(rebalance.stdout).toContain('plan: 341 buckets to shard-2 (0 already there)');
    expect(rebalance.stdout).toContain('dry run: nothing was changed');
    const [{ n }] = await topo.admin.primary.ds.query('SELECT COUNT(*) AS n FROM shard_moves');
    expect(Number(n)).toBe(0);
  });
});

describe('moving buckets under live writes', () => {
  it('32 buckets move to shard-2 while two API instances write; the mover is killed mid-copy and mid-cut-over; every order ends on exactly one shard, the one the map names', async () => {
    // Users and their orders before the move.
    const users = await Promise.all(Array.from({ length: 8 }, () => signUp(apiA)));
    const first: { user: (typeof users)[number]; key: string; id: string; items: ReturnType<typeof lineFor> }[] = [];
    for (const [i, user] of users.entries()) {
      for (let k = 0; k < 2; k++) {
        const key = randomUUID();
        const r = await placeOrder(apiA, user.token, key, lineFor(i + k));
        expect(r.status).toBe(201);
        if (k === 0) first.push({ user, key, id: r.body.id, items: lineFor(i + k) });
      }
    }
    // apiB loads its map now, and keeps it for an hour.
    for (const f of first) expect((await fetch(`${apiB.url}/orders/${f.id}`, { headers: bearer(f.user.token) })).status).toBe(200);
    const before = await allOrders(topo.admin);
    const userBuckets = [...new Set(users.map((u) => bucketOf(u.id)))];
    const moving = [...userBuckets];
    for (let b = 0; moving.length < 32; b++) if (!moving.includes(b)) moving.push(b);
    const list = moving.sort((a, b) => a - b).join(',');

    // Dry run: the plan, nothing changed.
    const dry = await runShards(topo, ['move', '--buckets', list, '--to', '2', '--dry-run'], moverEnv);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('plan: 32 buckets to shard-2');
    expect(dry.stdout).toContain('dry run: nothing was changed');
    expect((await bucketMap(topo.admin)).filter((s) => s === 2).length).toBe(0);

    // Writers: 4 loops, alternating instances, until the mover is done.
    let stop = false;
    const placed: { id: string; userId: string }[] = [];
    const errors: unknown[] = [];
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const user = users[(w + i * 4) % users.length];
        const r = await placeOrder(w % 2 ? apiB : apiA, user.token, randomUUID(), lineFor(i));
        if (r.status === 201) placed.push({ id: r.body.id, userId: user.id });
        else errors.push({ status: r.status, body: r.body });
      }
    });

    try {
    // 1: killed after its first copied chunk.
    const t0 = Date.now();
    const run1 = await runShards(topo, ['move', '--buckets', list, '--to', '2'], { ...moverEnv, RESHARD_FAILPOINT: 'mid-copy' });
    expect(run1.signal).toBe('SIGKILL');
    const [copying] = await topo.admin.primary.ds.query("SELECT bucket, copy_cursor FROM shard_moves WHERE state = 'copying'");
    expect(BigInt(copying.copy_cursor)).toBeGreaterThan(0n);

    // 2: resumes that bucket's copy, killed in its cut-over: the source is frozen, the map not flipped.
    const run2 = await runShards(topo, ['move', '--buckets', list, '--to', '2'], { ...moverEnv, RESHARD_FAILPOINT: 'mid-cutover' });
    expect(run2.signal).toBe('SIGKILL');
    const [cut] = await topo.admin.primary.ds.query("SELECT bucket, from_shard FROM shard_moves WHERE state = 'cutover'");
    expect(Number(cut.bucket)).toBe(Number(copying.bucket));
    const [fence] = await topo.admin.shards[Number(cut.from_shard)].ds.query('SELECT state FROM bucket_fence WHERE bucket = ?', [cut.bucket]);
    expect(fence.state).toBe('frozen');
    // A write to the frozen bucket through the stale instance: refused and retried until the cut-over ends.
    const frozenUser = users.find((u) => bucketOf(u.id) === Number(cut.bucket))!;
    const duringCutover = placeOrder(apiB, frozenUser.token, randomUUID(), lineFor(1));

    // 3: resumes the cut-over and finishes every bucket (grace 0: source rows cleaned up at once).
    const run3 = await runShards(topo, ['move', '--buckets', list, '--to', '2'], { ...moverEnv, RESHARD_CONCURRENCY: '4' });
    expect(run3.stderr).not.toContain('failed');
    expect(run3.code).toBe(0);
    expect(run3.stdout).toMatch(/moved \d+ buckets to shard-2: \d+ rows copied/);
    expect(run3.stderr).toMatch(/\] \d+% bucket \d+\/\d+ .* rows\/s ETA/); // the progress line
    if (process.env.RESHARD_TEST_VERBOSE) console.log(`mover runs took ${Date.now() - t0} ms; placed ${placed.length}\n${run3.stdout}`);
    const stale = await duringCutover;
    expect(stale.status).toBe(201);
    expect(stale.body.shard).toBe('shard-2');
    const onOld = await topo.admin.shards[Number(cut.from_shard)].ds.query('SELECT COUNT(*) AS n FROM orders WHERE id = ?', [stale.body.id]);
    expect(Number(onOld[0].n)).toBe(0); // never landed on the old shard
    placed.push({ id: stale.body.id, userId: frozenUser.id });
    // A few more orders after the move, then the writers stop.
    const more = placed.length + 4;
    while (placed.length < more && errors.length === 0) await new Promise((r) => setTimeout(r, 20));
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(errors).toEqual([]);

    // Every order exactly once, on the shard the map names; the old ones unchanged; nothing lost.
    const map = await bucketMap(topo.admin);
    for (const b of moving) expect(map[b]).toBe(2);
    const after = await allOrders(topo.admin);
    const ids = after.map((o) => o.id);
    expect(new Set(ids).size).toBe(ids.length); // 0 duplicated
    for (const o of after) expect(o.shard).toBe(map[o.bucket]);
    const expected = new Set([...before.map((o) => o.id), ...placed.map((p) => p.id)]);
    expect(new Set(ids)).toEqual(expected); // 0 lost, nothing extra
    const sumBefore = new Map(before.map((o) => [o.id, o.sum]));
    for (const o of after) if (sumBefore.has(o.id)) expect(o.sum).toBe(sumBefore.get(o.id));
    const moves = await topo.admin.primary.ds.query('SELECT state, COUNT(*) AS n FROM shard_moves GROUP BY state');
    expect(moves.map((m: any) => [m.state, Number(m.n)])).toEqual([['cleaned', 32]]);
    const rowsLeft = await Promise.all(
      [0, 1].map(async (s) => Number((await topo.admin.shards[s].ds.query(`SELECT COUNT(*) AS n FROM orders WHERE bucket IN (${moving.join(',')})`))[0].n)),
    );
    expect(rowsLeft).toEqual([0, 0]); // cleaned up on the sources

    // Idempotency-Key replays after the move return the original order, through either instance.
    for (const f of first.slice(0, 4)) {
      for (const api of [apiA, apiB]) {
        const res = await post(api, f.user.token, f.key, f.items);
        expect(res.status).toBe(201);
        expect(res.headers.get('idempotent-replayed')).toBe('true');
        expect((await json(res)).id).toBe(f.id);
      }
      // And the id still resolves (through the map, to shard-2).
      const got = await json(await fetch(`${apiB.url}/orders/${f.id}`, { headers: bearer(f.user.token) }));
      expect(got).toMatchObject({ id: f.id, shard: 'shard-2' });
    }

    // Stock reconciles: what left the shelves is what the orders hold, and no reservation is left open.
    await apiA.app.get(StockReconciler).reconcileOnce({ olderThanMs: 0 });
    const sold = new Map<string, number>();
    for (const s of topo.admin.shards) {
      for (const r of await s.ds.query('SELECT product_id, SUM(quantity) AS q FROM order_items GROUP BY product_id')) sold.set(String(r.product_id), (sold.get(String(r.product_id)) ?? 0) + Number(r.q));
    }
    for (const p of products) {
      const [{ stock }] = await topo.admin.primary.ds.query('SELECT stock FROM products WHERE id = ?', [p.id]);
      expect(p.stock - Number(stock)).toBe(sold.get(p.id) ?? 0);
    }
    const [open] = await topo.admin.primary.ds.query("SELECT COUNT(*) AS n FROM stock_reservations WHERE state = 'reserved'");
    expect(Number(open.n)).toBe(0);
  });

  it("a stale router's write to a moved bucket is refused by the old shard and re-routed; its reads never see the old shard's copy", async () => {
    // C and D cache their maps for an hour; the move keeps the source rows for its grace period.
    const [C, D] = await Promise.all([startApi({ ...topo.env, SHARD_MAP_TTL_MS: '3600000' }), startApi({ ...topo.env, SHARD_MAP_TTL_MS: '3600000' })]);
    try {
      const map = await bucketMap(topo.admin);
      let user: Awaited<ReturnType<typeof signUp>>;
      do user = await signUp(C);
      while (map[bucketOf(user.id)] !== 0);
      const bucket = bucketOf(user.id);
      const o1 = await placeOrder(C, user.token, randomUUID(), lineFor(0));
      expect(o1.body.shard).toBe('shard-0');
      const routers = [C, D].map((api) => api.app.get(OrderShardRouter));
      await routers[1].reload();
      const version = routers[0].version;

      const mover = (grace: number) => new BucketMover(topo.admin.primary.ds, topo.admin.shards, { chunkRows: 2, throttleMs: 0, cleanupGraceSeconds: grace });
      await mover(3600).move([bucket], 1);
      expect(routers.map((r) => r.version)).toEqual([version, version]); // neither has seen the move
      const on = async (s: number, id: string) => Number((await topo.admin.shards[s].ds.query('SELECT COUNT(*) AS n FROM orders WHERE id = ?', [id]))[0].n);
      expect([await on(0, o1.body.id), await on(1, o1.body.id)]).toEqual([1, 1]); // the old copy waits for its grace period

      // Write: shard-0's fence says moved; C reloads its map and writes on shard-1.
      const o2 = await placeOrder(C, user.token, randomUUID(), lineFor(1));
      expect(o2).toMatchObject({ status: 201, fencedRetries: 0 });
      expect(o2.body.shard).toBe('shard-1');
      expect(routers[0].version).toBeGreaterThan(version);
      expect([await on(0, o2.body.id), await on(1, o2.body.id)]).toEqual([0, 1]);

      // Reads: D asks shard-0 (which still holds o1 but not o2), is refused, and answers from shard-1: both orders.
      const mine = await json(await fetch(`${D.url}/me/orders`, { headers: bearer(user.token) }));
      expect(mine.orders.map((o: any) => o.id).sort()).toEqual([o1.body.id, o2.body.id].sort());
      expect(mine.orders.every((o: any) => o.shard === 'shard-1')).toBe(true);
      expect(await json(await fetch(`${D.url}/orders/${o1.body.id}`, { headers: bearer(user.token) }))).toMatchObject({ id: o1.body.id, shard: 'shard-1' });

      // After the grace period (`npm run shards -- cleanup`), the old copy is gone.
      expect(await mover(0).cleanupDue()).toEqual([bucket]);
      expect([await on(0, o1.body.id), await on(1, o1.body.id)]).toEqual([0, 1]);

      // An instance still started with two shards, now that the map names shard-2: a clear 503, never a 500.
      const two = await startApi({ ...topo.env, DB_SHARD_URLS: topo.env.DB_SHARD_URLS.split(',').slice(0, 2).join(',') });
      try {
        const res = await post(two, user.token, randomUUID(), lineFor(0));
        expect(res.status).toBe(503);
        expect((await json(res)).error.code).toBe('shard_not_configured');
      } finally {
        await two.close();
      }
    } finally {
      await Promise.all([C.close(), D.close()]);
    }
  });

  it('abort mid-copy and mid-cut-over under live writes: the source owns the buckets again, writes succeed, 0 lost; refused after the flip', async () => {
    const map0 = await bucketMap(topo.admin);
    const [{ b: movedBefore }] = await topo.admin.primary.ds.query('SELECT GROUP_CONCAT(bucket) AS b FROM shard_moves');
    const taken = new Set(String(movedBefore ?? '').split(',').filter(Boolean).map(Number));
    // Two users in two buckets no earlier move touched (still on shard 0 or 1).
    const users: Awaited<ReturnType<typeof signUp>>[] = [];
    while (users.length < 2) {
      const u = await signUp(apiA);
      const b = bucketOf(u.id);
      if (map0[b] !== 2 && !taken.has(b) && !users.some((x) => bucketOf(x.id) === b)) users.push(u);
    }
    const [copyB, cutB] = users.map((u) => bucketOf(u.id));
    for (const [i, u] of users.entries()) for (let k = 0; k < 3; k++) expect((await placeOrder(apiA, u.token, randomUUID(), lineFor(i + k))).status).toBe(201);
    const before = await allOrders(topo.admin);
    const ownerOf = async (b: number) => (await bucketMap(topo.admin))[b];
    const fence = async (s: number, b: number) => (await topo.admin.shards[s].ds.query('SELECT state, logging FROM bucket_fence WHERE bucket = ?', [b]))[0] ?? { state: 'owned', logging: 0 };
    const onShard = async (s: number, b: number) => Number((await topo.admin.shards[s].ds.query('SELECT COUNT(*) AS n FROM orders WHERE bucket = ?', [b]))[0].n);

    // Live writes to both buckets, through both instances, until the end.
    let stop = false;
    const placed: { id: string; shard: string; bucket: number }[] = [];
    const errors: unknown[] = [];
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const user = users[w % 2];
        const r = await placeOrder(w < 2 ? apiA : apiB, user.token, randomUUID(), lineFor(i));
        if (r.status === 201) placed.push({ id: r.body.id, shard: r.body.shard, bucket: bucketOf(user.id) });
        else errors.push({ status: r.status, body: r.body });
      }
    });
    try {
      // Mid-copy: the mover dies after its first chunk; abort rolls the move back.
      const killed = await runShards(topo, ['move', '--buckets', String(copyB), '--to', '2'], { ...moverEnv, RESHARD_FAILPOINT: 'mid-copy' });
      expect(killed.signal).toBe('SIGKILL');
      expect(await onShard(2, copyB)).toBeGreaterThan(0); // a chunk reached the target
      const a1 = await runShards(topo, ['abort', '--buckets', String(copyB)]);
      expect({ code: a1.code, stderr: a1.stderr }).toEqual({ code: 0, stderr: '' });
      expect(a1.stdout).toContain(`aborted 1 moves (${copyB} at copying)`);

      // Mid-cut-over: the mover dies with the source frozen; a write to the bucket waits; abort unfreezes it.
      const cutKilled = await runShards(topo, ['move', '--buckets', String(cutB), '--to', '2'], { ...moverEnv, RESHARD_FAILPOINT: 'mid-cutover' });
      expect(cutKilled.signal).toBe('SIGKILL');
      expect((await fence(map0[cutB], cutB)).state).toBe('frozen');
      const waiting = placeOrder(apiB, users[1].token, randomUUID(), lineFor(2));
      const version = async () => Number((await topo.admin.primary.ds.query('SELECT version FROM shard_map_version WHERE id = 1'))[0].version);
      const v0 = await version();
      const a2 = await runShards(topo, ['abort', '--buckets', `${cutB},${copyB}`]);
      expect(await version()).toBeGreaterThan(v0); // the map is the same, its version moved: waiting writers retry at once
      expect(a2.code).toBe(0);
      expect(a2.stdout).toContain('aborted 2 moves');
      expect(a2.stdout).toContain(`${cutB} at cutover`);
      expect(a2.stdout).toContain(`${copyB} at aborted`); // aborting again is harmless
      const w = await waiting;
      expect(w.status).toBe(201);
      expect(w.body.shard).toBe(`shard-${map0[cutB]}`); // written on the source, which owns the bucket again
      placed.push({ id: w.body.id, shard: w.body.shard, bucket: cutB });

      // Writes go on for a moment after both aborts.
      const more = placed.length + 6;
      while (placed.length < more && errors.length === 0) await new Promise((r) => setTimeout(r, 20));
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(errors).toEqual([]);

    // The sources own the buckets again; the targets hold nothing of them and refuse them; the moves are aborted.
    for (const b of [copyB, cutB]) {
      expect(await ownerOf(b)).toBe(map0[b]);
      expect(await fence(map0[b], b)).toMatchObject({ state: 'owned', logging: 0 });
      expect((await fence(2, b)).state).toBe('moved');
      expect(await onShard(2, b)).toBe(0);
      const [k] = await topo.admin.shards[2].ds.query('SELECT COUNT(*) AS n FROM idempotency_keys WHERE user_id IN (?, ?)', users.map((u) => u.id));
      expect(Number(k.n)).toBe(0);
      const [m] = await topo.admin.primary.ds.query('SELECT state FROM shard_moves WHERE bucket = ?', [b]);
      expect(m.state).toBe('aborted');
    }
    // 0 lost, 0 duplicated, every order where the map says, the old ones unchanged.
    const after = await allOrders(topo.admin);
    const ids = after.map((o) => o.id);
    expect(new Set(ids).size).toBe(ids.length);
    const map = await bucketMap(topo.admin);
    for (const o of after) expect(o.shard).toBe(map[o.bucket]);
    for (const p of placed) expect(p.shard).toBe(`shard-${map0[p.bucket]}`);
    const present = new Set(ids);
    expect([...before.map((o) => o.id), ...placed.map((p) => p.id)].filter((id) => !present.has(id))).toEqual([]);
    const sumBefore = new Map(before.map((o) => [o.id, o.sum]));
    for (const o of after) if (sumBefore.has(o.id)) expect(o.sum).toBe(sumBefore.get(o.id));

    // An aborted bucket can be moved again later, from scratch.
    const again = await runShards(topo, ['move', '--buckets', String(copyB), '--to', '2'], { ...moverEnv, RESHARD_CLEANUP_GRACE_S: '3600' });
    expect(again.code).toBe(0);
    expect(await ownerOf(copyB)).toBe(2);
    expect(await onShard(2, copyB)).toBe(await onShard(map0[copyB], copyB)); // the source keeps its copy for the grace period

    // After the flip abort refuses, changes nothing, and says what to do instead.
    const late = await runShards(topo, ['abort', '--buckets', String(copyB)]);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('abort refused, nothing changed');
    expect(late.stderr).toContain(`move --buckets ${copyB} --to ${map0[copyB]}`);
    expect(await ownerOf(copyB)).toBe(2);
    const [m] = await topo.admin.primary.ds.query('SELECT state FROM shard_moves WHERE bucket = ?', [copyB]);
    expect(m.state).toBe('moved');
    expect((await placeOrder(apiA, users[0].token, randomUUID(), lineFor(0))).body.shard).toBe('shard-2');
  });

  it('a write transaction that holds the fence longer than RESHARD_FREEZE_WAIT_MS: the freeze is withdrawn, writes go on, the bucket stays; the next run moves it', async () => {
    const map0 = await bucketMap(topo.admin);
    const [{ b: movedBefore }] = await topo.admin.primary.ds.query('SELECT GROUP_CONCAT(bucket) AS b FROM shard_moves');
    const taken = new Set(String(movedBefore ?? '').split(',').filter(Boolean).map(Number));
    let user: Awaited<ReturnType<typeof signUp>>;
    do user = await signUp(apiA);
    while (map0[bucketOf(user.id)] === 2 || taken.has(bucketOf(user.id)));
    const bucket = bucketOf(user.id);
    const source = map0[bucket];
    for (let k = 0; k < 3; k++) expect((await placeOrder(apiA, user.token, randomUUID(), lineFor(k))).status).toBe(201);
    // A first run dies after its first chunk: the source's fence row exists (logging), the copy is half done.
    const killed = await runShards(topo, ['move', '--buckets', String(bucket), '--to', '2'], { ...moverEnv, RESHARD_FAILPOINT: 'mid-copy' });
    expect(killed.signal).toBe('SIGKILL');

    // A long transaction holds the fence row's shared lock, as a slow write in flight would.
    const holder = topo.admin.shards[source].ds.createQueryRunner();
    await holder.connect();
    const mover = (attempts: number) =>
      new BucketMover(topo.admin.primary.ds, topo.admin.shards, { chunkRows: 2, throttleMs: 0, cleanupGraceSeconds: 3600, freezeWaitMs: 100, freezeAttempts: attempts });
    try {
      await holder.startTransaction();
      await holder.query(`SELECT state FROM bucket_fence WHERE bucket = ? ${topo.admin.shards[source].dialect.sharedLock}`, [bucket]);
      const err = await mover(2).move([bucket], 2).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(FreezeTimedOut);
      // Nothing changed: the bucket is the source's, its fence owned (never left frozen), the move resumable.
      const [f] = await topo.admin.shards[source].ds.query('SELECT state FROM bucket_fence WHERE bucket = ?', [bucket]);
      expect(f.state).toBe('owned');
      const [m] = await topo.admin.primary.ds.query('SELECT state FROM shard_moves WHERE bucket = ?', [bucket]);
      expect(m.state).toBe('verified');
      expect((await bucketMap(topo.admin))[bucket]).toBe(source);
      // Writes to the bucket go on meanwhile, on the source (their shared locks do not wait for a withdrawn freeze).
      const w = await placeOrder(apiA, user.token, randomUUID(), lineFor(1));
      expect({ status: w.status, shard: w.body.shard }).toEqual({ status: 201, shard: `shard-${source}` });
    } finally {
      await holder.rollbackTransaction().catch(() => undefined);
      await holder.release();
    }
    // The slow transaction gone, the next run freezes at its first attempt and moves the bucket, the write included.
    const res = await mover(1).move([bucket], 2);
    expect(res.buckets[0].phases).toMatchObject({ freezeAttempts: 1 });
    expect((await bucketMap(topo.admin))[bucket]).toBe(2);
    const counts = await Promise.all([source, 2].map(async (s) => Number((await topo.admin.shards[s].ds.query('SELECT COUNT(*) AS n FROM orders WHERE bucket = ?', [bucket]))[0].n)));
    expect(counts[1]).toBe(counts[0]); // every order copied (the source keeps its copy for the grace period)
    expect(counts[1]).toBeGreaterThanOrEqual(4);
  });
});

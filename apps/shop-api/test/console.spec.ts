/**
 * The trade-off console's API on the real stack (docs/console.md): the snapshot and the SSE stream show
 * every node of the topology from /health's and /metrics' data; the experiment routes are admin only, exist
 * only with CONSOLE_EXPERIMENTS=on (never with NODE_ENV=production), run one at a time, and undo what they
 * changed even when they fail. The replica experiment (stops a shared replica's SQL thread) is in
 * console.chaos.spec.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '#libs/core';
import { bearer, createAdmin, json, signUp, waitFor, waitForReplicas, withNodes, type TestApi } from '#libs/testing';
import { startApi } from './support.js';

const EXPERIMENTS = ['cache-modes', 'stampede', 'stampede-fleet', 'partitions', 'attribute-filter', 'replica-lag', 'replica-kill', 'replica-scale', 'hot-user', 'worker-kill', 'redis-down'];
const NODES = ['primary', 'replica-1', 'replica-2', 'shard-0', 'shard-1', 'redis-cache', 'redis-queue'];

async function metricTotal(api: TestApi, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const re = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm');
  return Number(re.exec(text)?.[1] ?? 0);
}

async function waitForRun(api: TestApi, token: string, name: string): Promise<any> {
  let run: any;
  await waitFor(async () => {
    run = await json(await fetch(`${api.url}/admin/console/experiments/${name}`, { headers: bearer(token) }));
    return run.state && run.state !== 'running';
  }, 90_000, 200);
  return run;
}

describe('console with experiments off (the default)', () => {
  let api: TestApi;
  let admin: { token: string };
  let user: { token: string };
  beforeAll(async () => {
    api = await startApi();
    admin = await createAdmin(api);
    user = await signUp(api);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('when an admin asks for a snapshot, then every node of the topology is there with its health, this API instance and the rates', async () => {
    await fetch(`${api.url}/health/live`);
    const res = await fetch(`${api.url}/admin/console/snapshot`, { headers: bearer(admin.token) });
    expect(res.status).toBe(200);
    const s = await json(res);
    expect(s.nodes.map((n: any) => n.name)).toEqual(NODES);
    for (const n of s.nodes) expect(n.ready).toBe(true);
    for (const r of s.nodes.filter((n: any) => n.role === 'replica')) expect(r.routing.inRotation).toBe(true);
    const shards = s.nodes.filter((n: any) => n.role === 'shard');
    expect(shards.reduce((a: number, n: any) => a + n.buckets, 0)).toBe(1024);
    expect(s.api.cacheMode).toBe('l1l2');
    expect(s.experiments).toBeNull();
    // The same nodes /health reports (one source of truth).
    const health = await json(await fetch(`${api.url}/health`, { headers: bearer(admin.token) }));
    expect(s.nodes.map((n: any) => [n.name, n.ready])).toEqual(health.nodes.map((n: any) => [n.name, n.ready]));
  });

  it('when an admin opens the stream, then snapshot events arrive about once a second with rates from /metrics', async () => {
    const abort = new AbortController();
    const res = await fetch(`${api.url}/admin/console/stream`, { headers: bearer(admin.token), signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const events: any[] = [];
    let buf = '';
    while (events.length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data) events.push(JSON.parse(data));
        // Traffic between two ticks shows up as requests/s of its route family.
        if (data) for (let k = 0; k < 5; k++) await fetch(`${api.url}/health/live`);
      }
    }
    abort.abort();
    expect(events).toHaveLength(3);
    for (const e of events) expect(e.nodes.map((n: any) => n.name)).toEqual(NODES);
    expect(events[2].rates.intervalS).toBeGreaterThan(0.1);
    expect(events[2].rates.routes['/health'].rps).toBeGreaterThan(0);
  });

  it('when an admin sends HEAD to the stream, then it answers the headers and ends (found by the fuzz test: it hung)', async () => {
    const res = await fetch(`${api.url}/admin/console/stream`, { method: 'HEAD', headers: bearer(admin.token), signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  });

  it('when a user (not an admin) asks for the snapshot or the stream, then 403; anonymous 401', async () => {
    expect((await fetch(`${api.url}/admin/console/snapshot`, { headers: bearer(user.token) })).status).toBe(403);
    expect((await fetch(`${api.url}/admin/console/stream`, { headers: bearer(user.token) })).status).toBe(403);
    expect((await fetch(`${api.url}/admin/console/stream`)).status).toBe(401);
  });

  it('when experiments are off, then the experiment routes answer 404 in the JSON error shape, even to an admin', async () => {
    for (const name of EXPERIMENTS) {
      const res = await fetch(`${api.url}/admin/console/experiments/${name}`, { method: 'POST', headers: bearer(admin.token) });
      expect(res.status).toBe(404);
      expect((await json(res)).error.code).toBe('not_found');
    }
    expect((await fetch(`${api.url}/admin/console/experiments`, { headers: bearer(admin.token) })).status).toBe(404);
  });

  it('when GET /console, then the page and uPlot are served from this server (no CDN)', async () => {
    const page = await fetch(`${api.url}/console`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/console/uplot.min.js');
    expect(html).not.toMatch(/https?:\/\//);
    const uplot = await fetch(`${api.url}/console/uplot.min.js`);
    expect(uplot.status).toBe(200);
    expect(await uplot.text()).toContain('uPlot');
    expect((await fetch(`${api.url}/console/..%2Fapp.ts`)).status).toBe(404);
  });
});

describe('CONSOLE_EXPERIMENTS config', () => {
  it('when CONSOLE_EXPERIMENTS=on with NODE_ENV=production, then the config refuses to load, naming the variable', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', CONSOLE_EXPERIMENTS: 'on' })).toThrow(/CONSOLE_EXPERIMENTS=on is refused when NODE_ENV=production/);
    expect(() => loadConfig({ CONSOLE_EXPERIMENTS: 'yes' })).toThrow(/CONSOLE_EXPERIMENTS/);
    expect(loadConfig({}).console.experiments).toBe(false);
  });
});

describe('console experiments (CONSOLE_EXPERIMENTS=on)', () => {
  let api: TestApi;
  let admin: { token: string };
  let user: { token: string };
  beforeAll(async () => {
    // A 10 s bound: the 18 s cache-modes run is cut by it, which is what the undo test needs.
    api = await startApi({ CONSOLE_EXPERIMENTS: 'on', CONSOLE_EXPERIMENT_MAX_S: '10', CONSOLE_LOAD_CONNECTIONS: '4' });
    admin = await createAdmin(api);
    user = await signUp(api);
    await withNodes(async (db) => {
      const c = await db.primary.ds.query("INSERT INTO categories (code, name, attribute_schema) VALUES (CONCAT('console-', UUID_SHORT()), 'console spec', '{}')");
      await db.primary.ds.query("INSERT INTO products (category_id, name, price_cents, attributes) VALUES (?, 'console spec product', 100, '{}')", [c.insertId]);
      await waitForReplicas(db); // the experiment reads through the API, which reads replicas
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('when a user (not an admin) starts an experiment, then 403 and nothing runs', async () => {
    const res = await fetch(`${api.url}/admin/console/experiments/stampede`, { method: 'POST', headers: bearer(user.token) });
    expect(res.status).toBe(403);
    const list = await json(await fetch(`${api.url}/admin/console/experiments`, { headers: bearer(admin.token) }));
    expect(list.running).toBeNull();
    expect(list.experiments.map((e: any) => e.name)).toEqual(EXPERIMENTS);
    for (const name of EXPERIMENTS) expect((await fetch(`${api.url}/admin/console/experiments/${name}`, { method: 'POST', headers: bearer(user.token) })).status).toBe(403);
    expect((await json(await fetch(`${api.url}/admin/console/experiments`, { headers: bearer(admin.token) }))).running).toBeNull();
  });

  it('when an unknown experiment is asked for, then 404', async () => {
    expect((await fetch(`${api.url}/admin/console/experiments/drop-everything`, { method: 'POST', headers: bearer(admin.token) })).status).toBe(404);
  });

  it('when a second experiment starts while one runs, then 409; when the run outlives CONSOLE_EXPERIMENT_MAX_S, then it fails and what it created is deleted', async () => {
    // hot-user (15 s) under a 10 s bound: it creates its users and products, then finds it is out of time.
    const first = await fetch(`${api.url}/admin/console/experiments/hot-user`, { method: 'POST', headers: bearer(admin.token) });
    expect(first.status).toBe(202);
    const second = await fetch(`${api.url}/admin/console/experiments/stampede`, { method: 'POST', headers: bearer(admin.token) });
    expect(second.status).toBe(409);
    expect((await json(second)).error.code).toBe('conflict');
    const run = await waitForRun(api, admin.token, 'hot-user');
    expect(run.state).toBe('failed');
    expect(run.error).toMatch(/out of time/);
    expect(run.undone).toEqual([{ what: 'delete the experiment’s users, their orders and its category', ok: true }]);
    await withNodes(async (db) => {
      const [u] = await db.primary.ds.query("SELECT COUNT(*) AS n FROM users WHERE email LIKE 'console-hot-%'");
      const [c] = await db.primary.ds.query("SELECT COUNT(*) AS n FROM categories WHERE code LIKE 'console-hot-%'");
      expect([Number(u.n), Number(c.n)]).toEqual([0, 0]);
    });
  }, 60_000);

  it('when 100 concurrent reads hit one cold key, then the cache makes 1 database load (100 with it off), and the server\'s own /metrics counter agrees', async () => {
    const loads0 = await metricTotal(api, 'cache_db_loads_total', 'cache="product"');
    const res = await fetch(`${api.url}/admin/console/experiments/stampede`, { method: 'POST', headers: bearer(admin.token) });
    expect(res.status).toBe(202);
    const run = await waitForRun(api, admin.token, 'stampede');
    expect(run.state).toBe('done');
    const n = run.result.numbers;
    expect(n.ok).toBe(100);
    expect(n.dbLoads).toBe(1);
    expect(n.dbLoadsCacheOff).toBe(100);
    expect(n.dbReads).toBe(1);
    const loads1 = await metricTotal(api, 'cache_db_loads_total', 'cache="product"');
    expect(loads1 - loads0).toBe(n.dbLoads + n.dbLoadsCacheOff);
    expect(run.undone).toEqual([{ what: 'cache mode back to l1l2', ok: true }]);
  }, 60_000);
});

/** Tables on shard-0 whose names say a console experiment generated them (dropped at the end of every run). */
async function scratchTablesLeft(): Promise<string[]> {
  return withNodes(async (db) => {
    const rows = await db.shards[0].ds.query("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'console\\_%'");
    return rows.map((r: any) => String(r.t));
  });
}

describe('console experiments on generated data (CONSOLE_EXPERIMENTS=on, short preset)', () => {
  let api: TestApi;
  let admin: { token: string };
  beforeAll(async () => {
    api = await startApi({ CONSOLE_EXPERIMENTS: 'on', CONSOLE_EXPERIMENT_PRESET: 'short', CONSOLE_LOAD_CONNECTIONS: '4' });
    admin = await createAdmin(api);
  });
  afterAll(async () => {
    await api?.close();
  });
  const run = async (name: string) => {
    expect((await fetch(`${api.url}/admin/console/experiments/${name}`, { method: 'POST', headers: bearer(admin.token) })).status).toBe(202);
    return waitForRun(api, admin.token, name);
  };

  it('when the partitions experiment runs, then the month scan examines about one month of rows partitioned and the whole table unpartitioned, DROP PARTITION removes the month, and its tables are gone afterwards', async () => {
    const r = await run('partitions');
    expect(r.error).toBeUndefined();
    const n = r.result.numbers;
    // Rows generated in time order over 14 months: a month holds 1/14 of them.
    expect(n.monthOrders).toBeGreaterThan(n.orders / 20);
    expect(n.monthOrders).toBeLessThan(n.orders / 10);
    expect(n.scanRowsPartitioned).toBeGreaterThanOrEqual(n.monthOrders);
    expect(n.scanRowsPartitioned).toBeLessThan(2 * n.monthOrders + 10);
    expect(n.scanRowsUnpartitioned).toBeGreaterThanOrEqual(n.orders);
    expect(n.scanRowsRatio).toBeGreaterThan(5);
    expect(n.deletedRows).toBeGreaterThan(n.orders / 20);
    expect(r.result.rows[1].partitions).toMatch(/^p\d{6}$/); // EXPLAIN: one partition read
    expect(r.undone.map((u: any) => [u.what, u.ok])).toEqual([
      ['drop the generated tables on shard-0', true],
      ['release the measuring session', true],
    ]);
    expect(await scratchTablesLeft()).toEqual([]);
  }, 90_000);

  it('when the attribute-filter experiment runs, then indexed, EAV and scan return the same pages, the scan examines every food row and the index a handful, and its tables are gone afterwards', async () => {
    const r = await run('attribute-filter');
    expect(r.error).toBeUndefined();
    const n = r.result.numbers;
    const food = n.products / 3;
    expect(n.rowsScan).toBeGreaterThanOrEqual(food - 1);
    expect(n.rowsIndexed).toBeLessThan(food / 50);
    expect(n.rowsEav).toBeLessThan(food / 20);
    expect(n.scanVsIndexedRows).toBeGreaterThan(20);
    expect(r.undone.every((u: any) => u.ok)).toBe(true);
    expect(await scratchTablesLeft()).toEqual([]);
  }, 90_000);

  it('when the hot-user experiment runs, then one user\'s orders all land on one shard while spread users use both, /metrics counted the same orders, and the users and orders are deleted afterwards', async () => {
    const metric = async () => {
      const text = await (await fetch(`${api.url}/metrics`)).text();
      return [...text.matchAll(/^orders_created_total\{shard="[^"]+"\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    };
    const before = await metric();
    const r = await run('hot-user');
    expect(r.error).toBeUndefined();
    const n = r.result.numbers;
    expect(n.hotOrdersPerS).toBeGreaterThan(0);
    expect(n.hotBusiestSharePct).toBe(100);
    expect(n.spreadBusiestSharePct).toBeLessThan(90);
    expect(n['spread_shard-0']).toBeGreaterThan(0);
    expect(n['spread_shard-1']).toBeGreaterThan(0);
    expect(r.result.rows.every((x: any) => x['non-2xx'] === 0)).toBe(true);
    // Warm-up orders are counted by /metrics too, so the server saw at least the measured ones.
    expect((await metric()) - before).toBeGreaterThan(0);
    expect(r.undone).toEqual([{ what: 'delete the experiment’s users, their orders and its category', ok: true }]);
    await withNodes(async (db) => {
      const [u] = await db.primary.ds.query("SELECT COUNT(*) AS n FROM users WHERE email LIKE 'console-hot-%'");
      expect(Number(u.n)).toBe(0);
      for (const s of db.shards) {
        const [o] = await s.ds.query('SELECT COUNT(*) AS n FROM orders WHERE user_id = ?', [n.hotUserId]);
        expect(Number(o.n)).toBe(0);
      }
    });
  }, 90_000);
});

describe('console stream at shutdown', () => {
  it('when the server shuts down with a console stream open, then the stream ends and the server closes (an open SSE response must not hold close)', async () => {
    const api = await startApi();
    const admin = await createAdmin(api);
    const res = await fetch(`${api.url}/admin/console/stream`, { headers: bearer(admin.token) });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    while (!buf.includes('event: snapshot')) buf += (await reader.read()).value ?? '';
    await api.close();
    for (;;) if ((await reader.read()).done) break;
  }, 30_000);
});

/**
 * Q1 stampede over a fleet: a second shop-api instance is started for the run (a child process from dist, this
 * API's configuration, its own port on loopback), and one cold key is read by N concurrent requests on EACH
 * instance at the same moment. Single-flight makes one load per process; the Redis lease (the SET NX lock on
 * redis-cache) lets only one process of the fleet load, the others wait for its value: 1 database load for
 * the fleet, not one per instance. Counted by each instance itself: cache_db_loads_total on this one's
 * registry and on the other's GET /metrics.
 */
import { Agent } from 'node:http';
import { randomBytes } from 'node:crypto';
import { ApiError, freePort } from '#libs/core';
import { total } from '../counters.js';
import { exited, startChild } from './children.js';
import { assertTime, sleep, until, type Experiment } from './experiment.js';
import { get } from './load.js';
import { productIds } from './server-counters.js';

const PER_INSTANCE = 50;

async function remoteTotal(baseUrl: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const re = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm');
  return Number(re.exec(text)?.[1] ?? 0);
}

export const stampedeFleet: Experiment = {
  name: 'stampede-fleet',
  title: 'Q1 · cold-key stampede over two API instances',
  explain: `A second shop-api is started for the run; ${PER_INSTANCE} concurrent reads of one just-invalidated product on EACH instance at once: single-flight + the Redis lease make 1 database load for the fleet.`,
  doc: 'docs/q1-hot-products.md',
  seconds: 15,
  async run(ctx) {
    const [id] = await productIds(ctx.db.primary, 1);
    if (!id) throw ApiError.conflict('no products to read: seed some first (npm run seed)');
    if (ctx.cache.products.opts.mode === 'off') throw ApiError.conflict('the cache is off (CACHE_MODE=off): nothing to coalesce');
    assertTime(ctx, 12_000);
    const port = await freePort();
    const other = `http://127.0.0.1:${port}`;
    ctx.progress(`starting a second shop-api on ${other} (this API's configuration, experiments off)`);
    const child = await startChild(ctx, 'the second shop-api', 'apps/shop-api/src/main.js', `fleet-${randomBytes(3).toString('hex')}`, {
      PORT: String(port),
      HOST: '127.0.0.1',
      CONSOLE_EXPERIMENTS: 'off',
      // Background jobs are this instance's to run; the second one only serves reads.
      PARTITION_MAINTENANCE_INTERVAL_S: '0',
      SHORTS_SWEEP_INTERVAL_MS: '0',
    });
    const up = await until(async () => (await fetch(`${other}/health/live`).catch(() => undefined))?.ok === true, Math.max(1000, ctx.deadline - Date.now() - 6000), ctx.signal);
    if (!up) throw new Error('the second shop-api did not start in time');
    // Both instances know the product (a warm L1 each), then the key is invalidated: the pub/sub message drops it from both L1s.
    const agent = new Agent({ keepAlive: false, maxSockets: 2 * PER_INSTANCE });
    const here = new URL(ctx.baseUrl);
    const there = new URL(other);
    await get(agent, here, `/products/${id}`);
    await get(agent, there, `/products/${id}`);
    await ctx.cache.invalidateProduct(id);
    await sleep(300, ctx.signal);
    const loads0 = { here: await total(ctx.metrics, 'cache_db_loads_total', { cache: 'product' }), there: await remoteTotal(other, 'cache_db_loads_total', 'cache="product"') };
    const waits0 = { here: await total(ctx.metrics, 'cache_lease_waits_total', { cache: 'product' }), there: await remoteTotal(other, 'cache_lease_waits_total', 'cache="product"') };
    ctx.progress(`${PER_INSTANCE} concurrent GET /products/${id} on each instance at once`);
    const burst = (base: URL) => Array.from({ length: PER_INSTANCE }, () => get(agent, base, `/products/${id}`).catch(() => ({ status: 0, xCache: 'error' })));
    const answers = await Promise.all([...burst(here), ...burst(there)]);
    agent.destroy();
    const loads = { here: (await total(ctx.metrics, 'cache_db_loads_total', { cache: 'product' })) - loads0.here, there: (await remoteTotal(other, 'cache_db_loads_total', 'cache="product"')) - loads0.there };
    const waits = { here: (await total(ctx.metrics, 'cache_lease_waits_total', { cache: 'product' })) - waits0.here, there: (await remoteTotal(other, 'cache_lease_waits_total', 'cache="product"')) - waits0.there };
    child.kill('SIGTERM');
    await exited(child);
    const ok = (from: number) => answers.slice(from, from + PER_INSTANCE).filter((a) => a.status === 200).length;
    const xc = (from: number) => {
      const m: Record<string, number> = {};
      for (const a of answers.slice(from, from + PER_INSTANCE)) m[a.xCache || '-'] = (m[a.xCache || '-'] ?? 0) + 1;
      return Object.entries(m).map(([k, v]) => `${k}:${v}`).join(' ');
    };
    const rows = [
      { instance: 'this shop-api', requests: PER_INSTANCE, 'answered 200': ok(0), 'DB loads (its cache_db_loads_total)': loads.here, 'lease waits (its cache_lease_waits_total)': waits.here, 'X-Cache': xc(0) },
      { instance: `second shop-api (:${port})`, requests: PER_INSTANCE, 'answered 200': ok(PER_INSTANCE), 'DB loads (its cache_db_loads_total)': loads.there, 'lease waits (its cache_lease_waits_total)': waits.there, 'X-Cache': xc(PER_INSTANCE) },
    ];
    const fleet = loads.here + loads.there;
    return {
      name: this.name,
      doc: this.doc,
      rows,
      numbers: { instances: 2, requests: 2 * PER_INSTANCE, ok: ok(0) + ok(PER_INSTANCE), fleetDbLoads: fleet, dbLoadsHere: loads.here, dbLoadsThere: loads.there, leaseWaits: waits.here + waits.there },
      headline: `${2 * PER_INSTANCE} concurrent reads of a cold key over two API instances cost ${fleet} database load${fleet === 1 ? '' : 's'} for the fleet (${loads.here} + ${loads.there}, each instance's own counter): an instance that did not load took the value from redis-cache (L2) or waited on the Redis lease (${waits.here + waits.there} lease waits) instead.`,
    };
  },
};

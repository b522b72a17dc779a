/**
 * Q1 stampede: N concurrent reads of one cold key. With the cache off every read is a database load; with
 * the cache on, single-flight (one load per process) and the Redis lease (one per fleet) make it ONE.
 * Counted by the server itself: cache_db_loads_total and db_reads_total (GET /metrics) before and after.
 */
import { Agent } from 'node:http';
import { ApiError } from '#libs/core';
import { byLabel, total } from '../counters.js';
import { assertTime, type Experiment, type ExperimentContext } from './experiment.js';
import { get } from './load.js';
import { productIds } from './server-counters.js';

const N = 100;

async function burst(ctx: ExperimentContext, id: string) {
  const counters = async () => ({
    loads: await total(ctx.metrics, 'cache_db_loads_total', { cache: 'product' }),
    coalesced: await total(ctx.metrics, 'cache_coalesced_total', { cache: 'product' }),
    leaseWaits: await total(ctx.metrics, 'cache_lease_waits_total', { cache: 'product' }),
    reads: Object.values(await byLabel(ctx.metrics, 'db_reads_total', 'node')).reduce((a, b) => a + b, 0),
  });
  const before = await counters();
  const agent = new Agent({ keepAlive: false, maxSockets: N });
  const base = new URL(ctx.baseUrl);
  const answers = await Promise.all(Array.from({ length: N }, () => get(agent, base, `/products/${id}`).catch(() => ({ status: 0, xCache: 'error' }))));
  agent.destroy();
  const after = await counters();
  const xCache: Record<string, number> = {};
  for (const a of answers) xCache[a.xCache || '-'] = (xCache[a.xCache || '-'] ?? 0) + 1;
  return {
    ok: answers.filter((a) => a.status === 200).length,
    loads: after.loads - before.loads,
    coalesced: after.coalesced - before.coalesced,
    leaseWaits: after.leaseWaits - before.leaseWaits,
    reads: after.reads - before.reads,
    xCache: Object.entries(xCache).map(([k, v]) => `${k}:${v}`).join(' '),
  };
}

export const stampede: Experiment = {
  name: 'stampede',
  title: 'Q1 · cold-key stampede',
  explain: `${N} concurrent reads of one product whose cache entry was just dropped: database loads with the cache off, then with single-flight + the Redis lease (1, not ${N}).`,
  doc: 'docs/q1-hot-products.md',
  seconds: 2,
  async run(ctx) {
    const [id] = await productIds(ctx.db.primary, 1);
    if (!id) throw ApiError.conflict('no products to read: seed some first (npm run seed)');
    const configured = ctx.cache.products.opts.mode;
    if (configured === 'off') throw ApiError.conflict('the cache is off (CACHE_MODE=off): nothing to coalesce');
    const restore = ctx.undo(`cache mode back to ${configured}`, () => ctx.cache.setMode(configured));
    assertTime(ctx, 5000);
    ctx.progress(`cache off: ${N} concurrent GET /products/${id}`);
    ctx.cache.setMode('off');
    const off = await burst(ctx, id);
    await restore();
    ctx.progress(`cache ${configured}, key ${id} invalidated: ${N} concurrent GET /products/${id}`);
    await ctx.cache.invalidateProduct(id);
    const on = await burst(ctx, id);
    const row = (mode: string, r: typeof on) => ({ mode, requests: N, 'answered 200': r.ok, 'DB loads (cache_db_loads_total)': r.loads, 'DB reads (db_reads_total)': r.reads, coalesced: r.coalesced, 'lease waits': r.leaseWaits, 'X-Cache': r.xCache });
    return {
      name: this.name,
      doc: this.doc,
      rows: [row('cache off', off), row(`cold key, cache ${configured}`, on)],
      numbers: { requests: N, dbLoads: on.loads, dbReads: on.reads, dbLoadsCacheOff: off.loads, coalesced: on.coalesced, ok: on.ok },
      headline: `${N} concurrent reads of a cold key cost ${on.loads} database load${on.loads === 1 ? '' : 's'} with the cache (${off.loads} with it off), counted by the server's cache_db_loads_total.`,
    };
  },
};

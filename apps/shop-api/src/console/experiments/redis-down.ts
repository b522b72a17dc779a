/**
 * Q1: the cache's Redis goes down under load. The cache runs L2-only for the run (L1 would hide the
 * outage: every read must ask Redis), redis-cache is SIGKILLed (the native stack's node), reads keep
 * answering from the database (GuardedRedis: timeouts and the breaker turn failures into misses), then the
 * node is started again and L2 hits come back. Counted: errors, X-Cache of the answers, the server's
 * cache_redis_bypass_total.
 */
import { ApiError } from '#libs/core';
import { total } from '../counters.js';
import { assertTime, until, type Experiment, type ExperimentContext } from './experiment.js';
import { runLoad, zipf, type LoadResult } from './load.js';
import { productIds } from './server-counters.js';

const PHASE_MS = 4000;
const RECOVER_MS = 20_000;

export const redisDown: Experiment = {
  name: 'redis-down',
  title: 'Q1 · redis-cache down',
  explain: 'The cache runs on Redis only (L1 off); redis-cache is killed under a Zipf read load: reads keep answering from the database (0 errors), then it starts again and L2 hits return.',
  doc: 'docs/q1-hot-products.md',
  seconds: 3 * PHASE_MS / 1000 + 4,
  async run(ctx: ExperimentContext) {
    const ids = await productIds(ctx.db.primary, 10_000);
    if (!ids.length) throw ApiError.conflict('no products to read: seed some first (npm run seed)');
    const configured = ctx.cache.products.opts.mode;
    if (configured === 'off') throw ApiError.conflict('the cache is off (CACHE_MODE=off): no Redis to lose');
    const restore = ctx.undo(`cache mode back to ${configured}`, () => ctx.cache.setMode(configured));
    ctx.cache.setMode('l2');
    const rank = zipf(ids.length, 1);
    const paths = () => `/products/${ids[rank()]}`;
    const phase = async (label: string) => {
      const b0 = await total(ctx.metrics, 'cache_redis_bypass_total');
      const r: LoadResult = await runLoad({ baseUrl: ctx.baseUrl, paths, connections: ctx.loadConnections, ms: PHASE_MS, signal: ctx.signal });
      const bypass = (await total(ctx.metrics, 'cache_redis_bypass_total')) - b0;
      const hits = (k: string) => r.xCache[k] ?? 0;
      return { phase: label, 'req/s': r.rps, 'p99 ms': r.p99Ms, requests: r.requests, errors: r.errors, 'answered from L2': hits('l2'), 'answered from the DB': hits('db') + hits('coalesced'), 'Redis bypasses (cache_redis_bypass_total)': bypass };
    };
    assertTime(ctx, 3 * PHASE_MS + RECOVER_MS);
    ctx.progress(`redis-cache up, cache L2 only: ${PHASE_MS / 1000} s of Zipf(1) load`);
    const before = await phase('redis-cache up');
    const restart = await ctx.durableUndo('start redis-cache again', { kind: 'start-redis-cache' });
    ctx.progress('SIGKILL redis-cache; the same load');
    await ctx.stack.killRedisCache(ctx.config.redis.cacheUrl);
    const during = await phase('redis-cache killed');
    ctx.progress('starting redis-cache again; waiting for the cache client and the breaker');
    const t0 = Date.now();
    await restart();
    const back = await until(() => ctx.cache.redis.redis.status === 'ready', RECOVER_MS, ctx.signal);
    const recoverMs = back ? Date.now() - t0 : null;
    const after = await phase('redis-cache started again');
    await restore();
    return {
      name: this.name,
      doc: this.doc,
      rows: [before, during, after],
      numbers: { errorsDuring: during.errors, requestsDuring: during.requests, fromDbDuring: during['answered from the DB'], l2After: after['answered from L2'], recoverMs },
      headline: `With redis-cache killed, ${during.requests} reads answered with ${during.errors} errors (${during['answered from the DB']} from the database); it was back ${recoverMs ?? '—'} ms after the restart, and L2 answered ${after['answered from L2']} reads after.`,
    };
  },
};

/**
 * Q1 at run time: the same bounded Zipf(1) read load on GET /products/:id with the cache off, L2 (Redis)
 * only, then L1 + L2, switched on this running instance (ProductCache.setMode) and switched back after.
 * The catalog nodes are CPU-capped for the run (the native stack's cgroup caps, as the hot-products benchmark
 * does, lifted afterwards): on an uncapped database the load generator and the API share this one process,
 * which then bounds req/s in every mode and hides what the cache saves. Capped, the database is the ceiling
 * without the cache, as it is in production. Where caps are unavailable the run says so in its headline.
 * The cached modes first read every product once (a pre-warm, as the benchmark does): the phase then measures
 * a warm cache, not the first-read misses of a long tail.
 */
import { ApiError } from '#libs/core';
import { total } from '../counters.js';
import { assertTime, capNodes, preset, type Experiment } from './experiment.js';
import { getEach, runLoad, zipf } from './load.js';
import { REPLICA_CAP_CPU } from './replica-scale.js';
import { comSelect, productIds } from './server-counters.js';

const RANK = { off: 0, l2: 1, l1l2: 2 } as const;
const WARM = 3000;
const PHASE = 5000;
/** The catalog the load reads: every product of it fits the cache, which a cached mode pre-warms (as the hot-products benchmark does). */
const PRODUCTS = 2000;

export const cacheModes: Experiment = {
  name: 'cache-modes',
  title: 'Q1 · cache off / L2 / L1+L2',
  explain: `Catalog nodes capped; the same Zipf(1) read load over ${PRODUCTS} products on GET /products/:id with the cache off, Redis only (pre-warmed), then in-process L1 + Redis: req/s, p99 and database loads per second.`,
  doc: 'docs/q1-hot-products.md',
  seconds: 3 * (WARM + PHASE) / 1000 + 2,
  async run(ctx) {
    const ids = await productIds(ctx.db.primary, PRODUCTS);
    if (!ids.length) throw ApiError.conflict('no products to read: seed some first (npm run seed)');
    const configured = ctx.cache.products.opts.mode;
    const modes = (['off', 'l2', 'l1l2'] as const).filter((m) => RANK[m] <= RANK[configured]);
    const restore = ctx.undo(`cache mode back to ${configured}`, () => ctx.cache.setMode(configured));
    const capped = [ctx.db.primary, ...ctx.db.replicas.filter((r) => r.ds.isInitialized)];
    const cap = await capNodes(ctx, capped, REPLICA_CAP_CPU);
    ctx.progress(cap.applied ? `${capped.map((n) => n.name).join(', ')} capped to ${REPLICA_CAP_CPU} CPU (cgroup ${cap.mechanism})` : `not capped (${cap.reason}): this process, not the database, bounds req/s`);
    const WARM_MS = preset(ctx, WARM, 1000);
    const PHASE_MS = preset(ctx, PHASE, 2000);
    const rank = zipf(ids.length, 1);
    const paths = () => `/products/${ids[rank()]}`;
    const catalog = [ctx.db.primary, ...ctx.db.replicas];
    const rows: Record<string, string | number | null>[] = [];
    const numbers: Record<string, number | null> = {};
    for (const mode of modes) {
      assertTime(ctx, WARM_MS + PHASE_MS);
      ctx.progress(`cache ${mode}: ${mode === 'off' ? '' : `each of the ${ids.length} products read once, then `}${PHASE_MS / 1000} s of Zipf(1) over them, ${ctx.loadConnections} connections`);
      ctx.cache.setMode(mode);
      if (mode !== 'off') await getEach({ baseUrl: ctx.baseUrl, paths: ids.map((id) => `/products/${id}`), connections: ctx.loadConnections, signal: ctx.signal });
      await runLoad({ baseUrl: ctx.baseUrl, paths, connections: ctx.loadConnections, ms: WARM_MS, signal: ctx.signal });
      const loads0 = await total(ctx.metrics, 'cache_db_loads_total', { cache: 'product' });
      const sel0 = await comSelect(catalog);
      const t0 = performance.now();
      const r = await runLoad({ baseUrl: ctx.baseUrl, paths, connections: ctx.loadConnections, ms: PHASE_MS, signal: ctx.signal });
      const s = (performance.now() - t0) / 1000;
      const loads = (await total(ctx.metrics, 'cache_db_loads_total', { cache: 'product' })) - loads0;
      const selects = (await comSelect(catalog)) - sel0;
      const row = { mode, 'req/s': r.rps, 'p99 ms': r.p99Ms, 'DB loads/s': Math.round(loads / s), 'selects/s on catalog nodes': Math.round(selects / s), errors: r.errors };
      rows.push(row);
      numbers[`rps_${mode}`] = r.rps;
      numbers[`p99_${mode}`] = r.p99Ms;
      numbers[`dbLoadsPerS_${mode}`] = row['DB loads/s'];
    }
    await cap.restore();
    await restore();
    numbers.capCpu = cap.applied ? REPLICA_CAP_CPU : null;
    const off = numbers.rps_off;
    const best = numbers[`rps_${configured}`];
    const loadsOff = numbers.dbLoadsPerS_off;
    const loadsBest = numbers[`dbLoadsPerS_${configured}`];
    numbers.ratio = off && best ? Math.round((best / off) * 100) / 100 : null;
    numbers.dbLoadReduction = loadsOff && loadsBest ? Math.round((loadsOff / loadsBest) * 10) / 10 : null;
    return {
      name: this.name,
      doc: this.doc,
      rows,
      numbers,
      ...(cap.applied ? { caps: { cpu: REPLICA_CAP_CPU, mechanism: cap.mechanism, nodes: capped.map((n) => n.name) } } : {}),
      headline:
        numbers.ratio === null
          ? `cache ${configured} only (CACHE_MODE=${configured})`
          : `${configured} cuts database loads from ${loadsOff}/s to ${loadsBest}/s${numbers.dbLoadReduction ? ` (${numbers.dbLoadReduction}×)` : ''} and serves ${numbers.ratio}× the reads/s of cache off (same process, same load, one run; ${cap.applied ? `catalog nodes capped to ${REPLICA_CAP_CPU} CPU each` : 'catalog nodes NOT capped, so this process bounds req/s in every mode'}).`,
    };
  },
};

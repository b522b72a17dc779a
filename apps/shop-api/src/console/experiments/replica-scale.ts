/**
 * Q3 at run time: do replicas scale reads? The catalog nodes (primary and both replicas) are CPU-capped
 * equally (the native stack's cgroup caps, lifted afterwards), so the database nodes, not this box, bound the
 * reads. The same primary-key reads (what GET /products/:id runs on a cache miss) go through ReplicaRouter
 * with 0 replicas (all on the primary), 1, then 2 (round-robin), `loadConnections` in flight. The reads skip
 * HTTP on purpose: one API process serving every request would be the ceiling on a small box, not the nodes.
 * Counted twice: reads answered here, and each node's own Com_select (SHOW GLOBAL STATUS); the CFS counters
 * say whether each node was throttled (capacity-bound) in the phase.
 */
import { ApiError } from '#libs/core';
import { ReplicaRouter, type DbNode, type DbNodes } from '#libs/db';
import { assertTime, capNodes, preset, sleep, type Experiment, type ExperimentContext } from './experiment.js';
import { zipf } from './load.js';
import { comSelect, productIds } from './server-counters.js';

/** Cores per capped node: the benchmark's calibration floor (load-tests/scenarios/replica-reads.ts minCap). */
export const REPLICA_CAP_CPU = 0.05;
const WARM = 1000;
const PHASE = 4000;

/** The topology with only `replicas` as read replicas (same pools): what an API configured with them routes over. */
function withReplicas(db: DbNodes, replicas: DbNode[]): DbNodes {
  return Object.assign(Object.create(Object.getPrototypeOf(db) as object) as DbNodes, db, { replicas });
}

async function readLoop(ctx: ExperimentContext, router: ReplicaRouter, ids: string[], ms: number): Promise<{ reads: number; errors: number }> {
  const rank = zipf(ids.length, 1);
  const end = performance.now() + ms;
  let reads = 0;
  let errors = 0;
  const loop = async () => {
    while (performance.now() < end && !ctx.signal.aborted) {
      try {
        await router.read((on) => on.query('SELECT id, category_id, name, price_cents, stock, attributes, version FROM products WHERE id = ?', [ids[rank()]]), null);
        reads++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: ctx.loadConnections }, loop));
  return { reads, errors };
}

export const replicaScale: Experiment = {
  name: 'replica-scale',
  title: 'Q3 · reads with 0 / 1 / 2 replicas',
  explain: `Primary and replicas capped to ${REPLICA_CAP_CPU} CPU each; the same primary-key reads through ReplicaRouter with no replica, one, then two: reads/s, and each node's own SELECT count.`,
  doc: 'docs/q3-replication.md',
  seconds: 3 * (WARM + PHASE) / 1000 + 4,
  async run(ctx) {
    const ids = await productIds(ctx.db.primary, 2000);
    if (!ids.length) throw ApiError.conflict('no products to read: seed some first (npm run seed)');
    const replicas = ctx.db.replicas.filter((r) => r.ds.isInitialized && ctx.monitor.health(r.name)?.inRotation);
    if (replicas.length < 2) throw ApiError.conflict(`${replicas.length} replica(s) in rotation: the experiment needs two`);
    const catalog = [ctx.db.primary, ...replicas];
    const WARM_MS = preset(ctx, WARM, 500);
    const PHASE_MS = preset(ctx, PHASE, 2000);
    assertTime(ctx, 3 * (WARM_MS + PHASE_MS) + 2000);
    const cap = await capNodes(ctx, catalog, REPLICA_CAP_CPU);
    if (!cap.applied) throw ApiError.conflict(`CPU caps unavailable here (${cap.mechanism}: ${cap.reason}): without them the box, not the nodes, bounds the reads`);
    ctx.progress(`${catalog.map((n) => n.name).join(', ')} capped to ${REPLICA_CAP_CPU} CPU (cgroup ${cap.mechanism})`);
    const rows: Record<string, string | number | null>[] = [];
    const rps: number[] = [];
    for (const k of [0, 1, 2]) {
      const serving = k === 0 ? [ctx.db.primary] : replicas.slice(0, k);
      const router = new ReplicaRouter(withReplicas(ctx.db, replicas.slice(0, k)), null, { waitMs: 0 });
      ctx.progress(`${k} replica(s): ${PHASE_MS / 1000} s of reads on ${serving.map((n) => n.name).join(' + ')}, ${ctx.loadConnections} in flight`);
      await readLoop(ctx, router, ids, WARM_MS);
      const sel0 = await Promise.all(catalog.map((n) => comSelect([n])));
      const thr0 = await ctx.stack.throttled(serving);
      const t0 = performance.now();
      const r = await readLoop(ctx, router, ids, PHASE_MS);
      const s = (performance.now() - t0) / 1000;
      const sel1 = await Promise.all(catalog.map((n) => comSelect([n])));
      const thr1 = await ctx.stack.throttled(serving);
      const throttled = serving.map((n) => {
        const a = thr0[n.name];
        const b = thr1[n.name];
        return a && b && b.periods > a.periods ? Math.round((100 * (b.throttled - a.throttled)) / (b.periods - a.periods)) : null;
      });
      const row: Record<string, string | number | null> = { replicas: k, 'reads/s': Math.round(r.reads / s), 'failed reads': r.errors };
      catalog.forEach((n, i) => (row[`SELECTs/s on ${n.name} (Com_select)`] = Math.round((sel1[i] - sel0[i]) / s)));
      row['% of periods throttled (serving nodes)'] = throttled.map((x) => (x === null ? '—' : `${x} %`)).join(' / ');
      rows.push(row);
      rps.push(Math.round(r.reads / s));
      await sleep(200, ctx.signal);
    }
    await cap.restore();
    const r2 = Math.round((rps[2] / Math.max(1, rps[0])) * 100) / 100;
    const r1 = Math.round((rps[1] / Math.max(1, rps[0])) * 100) / 100;
    const r21 = Math.round((rps[2] / Math.max(1, rps[1])) * 100) / 100;
    return {
      name: this.name,
      doc: this.doc,
      rows,
      caps: { cpu: REPLICA_CAP_CPU, mechanism: cap.mechanism, nodes: catalog.map((n) => n.name) },
      numbers: { capCpu: REPLICA_CAP_CPU, rps0: rps[0], rps1: rps[1], rps2: rps[2], oneVsPrimary: r1, twoVsPrimary: r2, twoVsOne: r21, failed: rows.reduce((a, x) => a + Number(x['failed reads']), 0) },
      headline: `With every catalog node capped to ${REPLICA_CAP_CPU} CPU: ${rps[0]} reads/s on the primary alone, ${rps[1]} with one replica, ${rps[2]} with two: ${r2}× the primary (which also carries every write and the other clients' SELECTs, its Com_select column), ${r21}× one replica. Replicas add read capacity; writes stay on the one primary.`,
    };
  },
};

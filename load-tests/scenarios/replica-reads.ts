// Scenario `replica-reads` (seed Q3, docs/q3-replication.md): do replicas scale reads?
// GET /products/:id with the product cache off (CACHE_MODE=off) so every request is one PK read on the
// database, and every database node CPU-capped equally by the native stack (10 ms CFS period), so the
// database, not the box, is the bottleneck. The cap is calibrated: a short uncapped probe of primary-only
// measures the primary's CPU per read and the cap is set so one node is worth BENCH_REPLICA_TARGET_RPS
// reads/s (150; `--calibrate N`, or `--calibrate off` for the fixed BENCH_DB_CPU, 0.1). On a faster box the
// cap gets smaller instead of the API becoming the bottleneck. Each mode names the nodes that must be
// saturated (≥ 85 % of their quota, from /proc); a ratio over a mode whose nodes were not is reported as
// "not capacity-bound" instead of a number. Modes: the API with no replicas configured (all reads on the
// primary), with one replica, with two (ReplicaRouter round-robin). Two API processes per mode, so a
// single Node event loop is never the limit. Per mode the runner also reports the primary's own SELECT
// rate (Com_select delta over the measured seconds): with replicas it should fall to ~0.
// The request is http/replica-reads.js, which k6 runs too (load-tests/k6/replica-reads.js).
import type { Connection } from 'mysql2/promise';
import { dialectFor } from '#libs/db';
import type { DemoPreset, ModeDef, Scenario } from '../runner/bench.js';
import http, { PRODUCTS } from './http/replica-reads.js';
import { connect, ensureBenchProducts, loadavg1m, localAdminUrl, queryable, ratioText } from './support.js';

const env = process.env;
const PRIMARY = env.DB_PRIMARY_URL || localAdminUrl(3307);
const REPLICAS = (env.DB_REPLICA_URLS || `${localAdminUrl(3308)},${localAdminUrl(3309)}`).split(',').filter(Boolean);
const CPU = Number(env.BENCH_DB_CPU || 0.1);
const TARGET_RPS = Number(env.BENCH_REPLICA_TARGET_RPS || 150);
const NODES = ['replica-1', 'replica-2'];
const api = (replicas: string[]): ModeDef => ({
  target: 'api',
  dbCpu: CPU,
  instances: 2,
  boundBy: replicas.length ? NODES.slice(0, replicas.length) : ['primary'],
  // A node capped to ~150 reads/s under 64 connections answers the replica monitor's status probe in about a
  // second, past its timeout (max(1 s, 2 × interval)): the replica then flaps out of rotation and its reads fall
  // back to the primary, so the modes would measure the fallback, not the replicas. A 3 s interval gives the
  // probe 6 s; nothing in this benchmark lags or fails, so the slower reaction costs nothing here.
  env: { CACHE_MODE: 'off', DB_REPLICA_URLS: replicas.join(','), LOG_LEVEL: 'error', REPLICA_MONITOR_INTERVAL_MS: '3000' },
});

async function comSelect(conn: Connection) {
  const [rows] = await conn.query<any[]>("SHOW GLOBAL STATUS LIKE 'Com_select'");
  return Number(rows[0].Value);
}

export default {
  ...http,
  description: `GET /products/:id, cache off, DB nodes capped (calibrated to ${TARGET_RPS} reads/s per node, else ${CPU} CPU): primary only vs one vs two replicas`,
  modes: {
    'primary-only': api([]),
    'one-replica': api(REPLICAS.slice(0, 1)),
    'two-replicas': api(REPLICAS.slice(0, 2)),
  },
  schema: true,
  // minCap: the uncapped probe measures a read's CPU at thousands of reads/s, where the server batches; under a
  // quota of a few hundredths of a CPU each read costs more than twice that (measured: 121 µs uncapped, 277 µs at
  // 0.018 CPU), so tiny calibrated caps starve the nodes below the target rate. 0.05 CPU is the floor.
  calibrate: { mode: 'primary-only', node: 'primary', targetRps: TARGET_RPS, probe: '3s', minCap: Number(env.BENCH_REPLICA_MIN_CAP || 0.05) },
  ratios: {
    one_replica_vs_primary: ['one-replica', 'primary-only'],
    two_replicas_vs_primary: ['two-replicas', 'primary-only'],
    // Adding a replica, node for node: the same kind of node (a replica) once and twice, so a primary node's own
    // per-read cost under the quota (it differs from a replica's) does not enter the ratio.
    two_replicas_vs_one_replica: ['two-replicas', 'one-replica'],
  },
  // Node runner only (after the runner's migrations): make sure PRODUCTS products exist, wait for replicas.
  async setup(ctx) {
    const conn = await connect(PRIMARY);
    try {
      const ids = await ensureBenchProducts(conn, 'bench-replica', 'Replica benchmark', PRODUCTS, (i) => ({ priceCents: 1000 + (i % 9000), attributes: { color: 'red', n: i } }));
      // The replicas apply the seeded products before the run: the dialect's own position and wait
      // (MariaDB MASTER_GTID_WAIT, MySQL WAIT_FOR_EXECUTED_GTID_SET), never SQL of one server written here.
      const [[{ version }]] = await conn.query<any[]>('SELECT VERSION() AS version');
      const dialect = dialectFor(version);
      const pos = await dialect.gtidPosition(queryable(conn));
      for (const url of REPLICAS) {
        const r = await connect(url);
        try {
          if (!(await dialect.waitForGtid(queryable(r), pos, 60_000))) throw new Error(`replica ${url.replace(/\/\/[^@]*@/, '//')} did not apply ${pos} within 60 s`);
        } finally {
          await r.end();
        }
      }
      ctx.log(`${ids.length} products in category bench-replica`);
      return { ids };
    } finally {
      await conn.end();
    }
  },
  async beforeMeasure() {
    const conn = await connect(PRIMARY);
    return { conn, before: await comSelect(conn) };
  },
  async afterMeasure(_ctx, _mode, _data, state: { conn: Connection; before: number }, durationS) {
    const after = await comSelect(state.conn);
    await state.conn.end();
    return { primary_selects_per_s: Math.round((after - state.before) / durationS), loadavg_1m: loadavg1m() };
  },
} satisfies Scenario<{ ids: string[] }>;

// `npm run demo -- q3` (scripts/demo.mjs), after replica-stale: the three modes, 2 s warm-up + 4 s each (plus the calibration probe).
export const demo = {
  opts: { duration: '4s', warmup: '2s' },
  // Without a cgroup cpu controller the modes run uncapped: the box, not the nodes, is then the limit (ratios omitted).
  uncapped: { 'uncapped-ok': true },
  headline(r) {
    const m = r.modes;
    const ratio = (k: string) => ratioText(r, k);
    return `**reads with two replicas: ${ratio('two_replicas_vs_primary')}** the primary alone (one replica: ${ratio('one_replica_vs_primary')}); ${m['primary-only']?.rps} / ${m['one-replica']?.rps} / ${m['two-replicas']?.rps} req/s with every node capped to the same read rate, and the primary's own SELECTs fall to ${m['two-replicas']?.extra?.primary_selects_per_s ?? '–'}/s. Replicas scale reads (writes stay on the one primary), at the price of the stale reads above unless a read carries its write's token.`;
  },
} satisfies DemoPreset;

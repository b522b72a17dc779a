// Scenario `replica-stale`: read-your-writes with one replica really lagging (its SQL thread stopped).
// The same write-then-read cycles through three read paths:
//   token_with_monitor   ReplicaRouter + ReplicaMonitor + the write's GTID token (what shop-api does)
//   token_only           ReplicaRouter with the token but no monitor (the lagging replica stays in rotation)
//   typeorm_random       TypeORM's built-in replication (a random replica per read), the baseline
// Each mode's req/s, p50 and p99 are of whole write-then-read cycles.
// and counts stale reads (the row just written is missing or old). Database-level, so Node only (`run`).
// It stops replica-1's SQL thread for the run and starts it again afterwards, even on failure or Ctrl-C.
// Runs in its own database mallscale_bench_stale on the stack's primary (created, then dropped).
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import { DataSource } from 'typeorm';
import { DbNodes, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import type { DemoPreset, ModeResult, Scenario } from '../runner/bench.js';
import { launcher } from '../runner/launcher.js';
import { runOnly, stackPort as port, untyped } from './support.js';

export default {
  name: 'replica-stale',
  description: 'write-then-read with replica-1 lagging: stale reads of the token path vs TypeORM random replica',
  ...runOnly,

  async run(ctx, opts) {
    const stack = await launcher();
    const CYCLES = Number(opts.cycles ?? 1000);
    const DB = 'mallscale_bench_stale';
    const user = opts.user ?? 'mallscale';
    const password = opts.password ?? 'mallscale';
    const url = (p: number, db = DB) => ({ url: `mysql://${user}:***@127.0.0.1:${p}/${db}`, host: '127.0.0.1', port: p, user, password, database: db });
    const primary = port('PRIMARY', 3307);
    const replicas = [port('REPLICA_1', 3308), port('REPLICA_2', 3309)];

    // The schema is created on the primary and replicates; wait for both replicas to have it.
    const admin = untyped(await mysql.createConnection({ host: '127.0.0.1', port: primary, user, password }));
    await admin.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
    await admin.query(`CREATE TABLE IF NOT EXISTS ${DB}.items (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL) ENGINE=InnoDB`);
    // DbNodes needs a shard and checks its identity; this run writes no orders, so the bench database stands
    // in for shard-0 (its own one-row identity, as the migrator would write it).
    await admin.query(`CREATE TABLE IF NOT EXISTS ${DB}.shard_identity (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, shard SMALLINT UNSIGNED NOT NULL)`);
    await admin.query(`INSERT IGNORE INTO ${DB}.shard_identity (id, shard) VALUES (1, 0)`);
    const db = await DbNodes.connect({ primary: url(primary), replicas: replicas.map((p) => url(p)), shards: [url(primary)], poolSize: 4 });
    const monitor = new ReplicaMonitor(db, { intervalMs: 250, maxLagMs: 1000 });
    let stopped = false;
    const restore = async () => {
      if (stopped) await stack.startReplicaSql('replica-1').catch(() => undefined);
      stopped = false;
    };
    const onSignal = () => void restore().finally(() => process.exit(130));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const insert = 'INSERT INTO items (name) VALUES (?)';
    const read = 'SELECT name FROM items WHERE id = ?';
    const modes: Record<string, ModeResult & { extra: Record<string, number> }> = {};
    const details: Record<string, unknown> = {};
    const pct = (xs: number[], p: number) => {
      const a = [...xs].sort((x, y) => x - y);
      return Math.round(a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))] * 100) / 100;
    };
    const row = (lat: number[], stale: number, ms: number) => ({ rps: Math.round((CYCLES * 1000) / ms), p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), errors: 0, requests: CYCLES, extra: { stale, stale_pct: Math.round((stale / CYCLES) * 1000) / 10 } });
    try {
      await monitor.start();
      for (let i = 0; i < 100 && !db.replicas.every((r) => monitor.health(r.name)?.inRotation); i++) await new Promise((r) => setTimeout(r, 100));
      await stack.stopReplicaSql('replica-1');
      stopped = true;
      for (let i = 0; i < 100 && monitor.health('replica-1')?.inRotation !== false; i++) await new Promise((r) => setTimeout(r, 100));

      const cycles = async (name: string, router: ReplicaRouter) => {
        let stale = 0;
        const served: Record<string, number> = {};
        const lat: number[] = [];
        const t0 = Date.now();
        for (let i = 0; i < CYCLES; i++) {
          const c0 = performance.now();
          const tag = `${name}-${randomUUID().slice(0, 12)}`;
          const { value: id, token } = await router.write(async (on) => Number((await on.query(insert, [tag])).insertId));
          const got = await router.read(async (on, node) => {
            served[node.name] = (served[node.name] ?? 0) + 1;
            return (await on.query(read, [id]))[0];
          }, token);
          if (got?.name !== tag) stale++;
          lat.push(performance.now() - c0);
        }
        modes[name] = row(lat, stale, Date.now() - t0);
        details[name] = { served };
        ctx.log(`${name}: ${stale} stale of ${CYCLES}, served ${JSON.stringify(served)}`);
      };
      await cycles('token_with_monitor', new ReplicaRouter(db, monitor, { waitMs: 50 }));
      await cycles('token_only', new ReplicaRouter(db, null, { waitMs: 10 }));

      const cred = (p: number) => ({ host: '127.0.0.1', port: p, username: user, password, database: DB });
      const ds = new DataSource({ type: 'mysql', replication: { master: cred(primary), slaves: replicas.map(cred), selector: 'RANDOM' }, poolSize: 4 });
      await ds.initialize();
      try {
        let stale = 0;
        const lat: number[] = [];
        const t0 = Date.now();
        for (let i = 0; i < CYCLES; i++) {
          const c0 = performance.now();
          const tag = `typeorm-${randomUUID().slice(0, 12)}`;
          const res = await ds.query(insert, [tag]); // raw queries go to the master
          const got = await ds.createQueryBuilder().select('i.name', 'name').from('items', 'i').where('i.id = :id', { id: res.insertId }).getRawOne(); // a random slave
          if (got?.name !== tag) stale++;
          lat.push(performance.now() - c0);
        }
        modes.typeorm_random = row(lat, stale, Date.now() - t0);
        ctx.log(`typeorm_random: ${stale} stale of ${CYCLES}`);
      } finally {
        await ds.destroy();
      }
    } finally {
      await restore();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await monitor.stop();
      await db.close();
      // Let replica-1 replay the run before the schema goes, so the stack is left as it was found.
      await admin.query(`DROP DATABASE IF EXISTS ${DB}`).catch(() => undefined);
      await admin.end();
    }
    return {
      modes,
      ratios: { typeorm_stale_reads: modes.typeorm_random.extra.stale, token_stale_reads: modes.token_with_monitor.extra.stale + modes.token_only.extra.stale },
      details: { cycles: CYCLES, ...details },
    };
  },
} satisfies Scenario;

// `npm run demo -- q3` (scripts/demo.mjs): the short run at the top of docs/q3-replication.md, 200 cycles per path.
export const demo = {
  opts: { cycles: 200 },
  headline(r) {
    const m = Object.fromEntries(Object.entries(r.modes).map(([k, v]) => [k, { ...v, extra: v.extra ?? {} }]));
    return `**naive random-replica reads: ${m.typeorm_random.extra.stale} stale of ${r.details.cycles}** (${m.typeorm_random.extra.stale_pct} %); token reads: ${m.token_with_monitor.extra.stale} with the monitor, ${m.token_only.extra.stale} without it, where a read sent to the lagging replica waits ≤ 10 ms for the token and falls back to the primary (${m.token_only.rps} write-then-read cycles/s without the monitor, ${m.token_with_monitor.rps} with it, which takes the lagging replica out of rotation). With replica-1's SQL thread stopped, a read right after a write that does not carry the write's position is stale whenever it lands on that replica.`;
  },
} satisfies DemoPreset;

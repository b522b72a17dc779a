// Scenario `galera`: replication vs clustering for the catalog, on the same load, through the app's own code
// (libs/db DbNodes + ReplicaMonitor/ReplicaRouter for the replicated catalog, GaleraMonitor/GaleraRouter for
// Galera: the path of every catalog read and write), measured (docs/q3-replication.md).
// Catalogs: a private primary + 2 GTID replicas (libs/testing startPrivateCatalog, 4337-4339) and a private
// 3-node Galera cluster (docker/local/galera.mjs through libs/testing galeraLauncher, in a temp dir, 4340-4342), never the shared :3307-:3309 or
// :3320-:3322. Both run during the comparison, which alternates between them in --rounds slices per phase (A B,
// B A, A B): on a shared box the load of other processes drifts, and back-to-back phases would charge the drift
// to one catalog. Per catalog (same table, same rows, same concurrency, --duration seconds per phase in all):
//   write_p50_ms / write_p99_ms   UPDATE of a random row by 8 concurrent writers (one autocommit write each)
//   writes_per_s
//   reads_per_s                   PK SELECTs by 16 concurrent readers, no token (round-robin over the read nodes)
//   read_p50_ms                   the same reads' latency
//   ryw_read_p50_ms / _p99_ms     read-your-writes: 4 clients each write then read the row back with the write's
//                                 token (replicated: GTID wait on a replica, or the primary; Galera: wsrep_sync_wait=1)
//   ryw_stale                     token reads that did not see their write (must be 0)
// Then on Galera, per run (--runs, default 5), a writer inserts a row every ~5 ms through GaleraRouter while:
//   galera_outage_ms              a node that only serves reads is SIGKILLed: longest gap between two acknowledged
//                                 writes (the survivors' commits wait until the group evicts the dead member)
//   galera_writer_outage_ms       the node taking writes is SIGKILLed: the same gap (writes move to the next node)
//   rejoin_ms / transfer          the killed node restarted until Synced, and how it got its state (IST expected);
//                                 the next kill waits until the cluster has settled (docker/local/galera.mjs waitSettled)
//   writes_lost                   acknowledged inserts missing on a survivor (must be 0)
// Options: --runs 5, --duration 6 (s per load phase and catalog), --rounds 3, --suspect 2000 (ms, STACK_GALERA_SUSPECT_MS: failure detection),
// --compare off (the node kills only: what `npm run bench -- failover` runs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { loadConfig } from '#libs/core';
import { DbNodes, GaleraMonitor, GaleraRouter, ReplicaMonitor, ReplicaRouter } from '#libs/db';
import { GALERA_NODES, galeraLauncher, startPrivateCatalog, type CatalogNodeName } from '#libs/testing';
import type { Scenario } from '../runner/bench.js';
import { runOnly, untyped } from './support.js';

const CATALOG_PORT = 4337;
const GALERA_PORT = 4340;
const DB = 'mallscale_bench_galera';
const ADMIN = { user: 'mallscale', password: 'mallscale' };
const ROWS = 1000;

type Phase = 'writes' | 'reads' | 'ryw';
interface Tally { wl: number[]; rl: number[]; yl: number[]; stale: number; ms: Record<Phase, number> }
/** What both routers offer: a write returns its consistency token, a read may wait for one. */
type CatalogRouter = Pick<ReplicaRouter, 'write' | 'read'>;
/** A failed write: the router's 503 (with the driver's error as cause), or the driver's own error (deadlock 1213). */
type WriteError = Error & { status?: number; errno?: number; code?: string; driverError?: { errno?: number; code?: string }; cause?: WriteError };
interface KillRun { run: number; galera_outage_ms: number; reader_killed: string; rejoin_ms: number; transfer: string | null; galera_writer_outage_ms: number; writer_killed: string; writer_rejoin_ms: number; writer_transfer: string | null; writes_now_on: string }
interface KillTotals { writes_acked: number; writes_503: number; reasons_503: Record<string, number>; after_event_503: Record<string, number>; writes_lost: number; other_errors: number; last_other_error?: string }

export default {
  name: 'galera',
  description: 'Replicated catalog vs Galera cluster: write latency, read throughput, read-your-writes cost, and the write outage when a Galera node dies',
  ...runOnly,

  async run(ctx, opts) {
    const galera = await galeraLauncher();
    const runs = Number(opts.runs ?? 5);
    const durationMs = Number(opts.duration ?? 6) * 1000;
    if (opts.suspect) process.env.STACK_GALERA_SUSPECT_MS = String(opts.suspect);
    const pct = (arr: number[], p: number) => { const s = [...arr].sort((a, b) => a - b); return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 100) / 100 : null; };
    const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

    /** Schema + rows on the node `setupUri` names (replicated to the others). */
    async function seed(setupUri: string) {
      const c = untyped(await mysql.createConnection({ uri: setupUri, multipleStatements: true }));
      await c.query(`CREATE DATABASE IF NOT EXISTS ${DB}; CREATE TABLE IF NOT EXISTS ${DB}.w (id INT PRIMARY KEY, v INT NOT NULL, at BIGINT NOT NULL)`);
      const rows = Array.from({ length: ROWS }, (_, i) => [i + 1, 0, Date.now()]);
      await c.query(`INSERT IGNORE INTO ${DB}.w (id, v, at) VALUES ?`, [rows]);
      await c.end();
    }

    // The same three load phases on each router, interleaved in --rounds slices (A B, B A, A B …) so that the
    // load other processes put on the box falls on both catalogs alike.
    const rnd = () => 1 + Math.floor(Math.random() * ROWS);
    const tally = (): Tally => ({ wl: [], rl: [], yl: [], stale: 0, ms: { writes: 0, reads: 0, ryw: 0 } });
    const PHASES: Record<Phase, (router: CatalogRouter, t: Tally, end: number) => Promise<void>> = {
      /** 8 writers: UPDATE of a random row. */
      async writes(router, t, end) {
        await Promise.all(Array.from({ length: 8 }, async () => {
          while (Date.now() < end) {
            const t0 = process.hrtime.bigint();
            await router.write((on) => on.query('UPDATE w SET v = v + 1, at = ? WHERE id = ?', [Date.now(), rnd()])).catch((e: WriteError) => { if (e.errno !== 1213 && e.driverError?.errno !== 1213) throw e; });
            t.wl.push(ms(t0));
          }
        }));
      },
      /** 16 readers by primary key, no token. */
      async reads(router, t, end) {
        await Promise.all(Array.from({ length: 16 }, async () => {
          while (Date.now() < end) {
            const t0 = process.hrtime.bigint();
            await router.read((on) => on.query('SELECT id, v, at FROM w WHERE id = ?', [rnd()]), null);
            t.rl.push(ms(t0));
          }
        }));
      },
      /** 4 clients, each owning a row: write it, read it back with the write's token. */
      async ryw(router, t, end) {
        await Promise.all(Array.from({ length: 4 }, async (_, k) => {
          for (let v = 1; Date.now() < end; v++) {
            const id = ROWS - k;
            const { token } = await router.write((on) => on.query('UPDATE w SET v = ? WHERE id = ?', [1_000_000 + v, id]));
            const t0 = process.hrtime.bigint();
            const [row] = await router.read((on) => on.query('SELECT v FROM w WHERE id = ?', [id]), token);
            t.yl.push(ms(t0));
            if (Number(row.v) !== 1_000_000 + v) t.stale++;
          }
        }));
      },
    };
    async function compareLoads(targets: { label: string; router: CatalogRouter; tally: Tally }[]) {
      const rounds = Math.max(1, Number(opts.rounds ?? 3));
      const slice = durationMs / rounds;
      for (const phase of Object.keys(PHASES) as Phase[]) {
        for (let r = 0; r < rounds; r++) {
          for (const t of r % 2 ? [...targets].reverse() : targets) {
            const t0 = Date.now();
            await PHASES[phase](t.router, t.tally, t0 + slice);
            t.tally.ms[phase] += Date.now() - t0;
          }
        }
      }
      return targets.map(({ label, tally: t }) => {
        const r = {
          catalog: label,
          write_p50_ms: pct(t.wl, 0.5), write_p99_ms: pct(t.wl, 0.99), writes_per_s: Math.round(t.wl.length / (t.ms.writes / 1000)),
          reads_per_s: Math.round(t.rl.length / (t.ms.reads / 1000)), read_p50_ms: pct(t.rl, 0.5),
          ryw_read_p50_ms: pct(t.yl, 0.5), ryw_read_p99_ms: pct(t.yl, 0.99), ryw_stale: t.stale,
        };
        ctx.log(`${label}: ${JSON.stringify(r)}`);
        return r;
      });
    }

    let compare: Record<string, number | string | null>[] = [];
    const comparing = opts.compare !== 'off';
    // ---- replicated catalog (up until the comparison has run on both)
    let replicated: { close: () => Promise<void>; router: CatalogRouter } | null = null;
    if (comparing) {
      const cat = await startPrivateCatalog(CATALOG_PORT);
      let repNodes: DbNodes | undefined, repMonitor: ReplicaMonitor | undefined;
      const close = async () => { await repMonitor?.stop(); await repNodes?.close(); await cat.destroy(); };
      ctx.onCleanup(close);
      await seed(cat.url('primary', ADMIN, ''));
      const url = (n: CatalogNodeName) => cat.url(n, ADMIN, DB);
      const config = loadConfig({ DB_PRIMARY_URL: url('primary'), DB_REPLICA_URLS: `${url('replica-1')},${url('replica-2')}` });
      repNodes = await DbNodes.connect({ ...config.db, shards: [], poolSize: 16 });
      repMonitor = new ReplicaMonitor(repNodes, { intervalMs: config.replication.monitorIntervalMs, maxLagMs: config.replication.maxLagMs });
      await repMonitor.start();
      replicated = { close, router: new ReplicaRouter(repNodes, repMonitor, { waitMs: config.replication.waitMs }) };
    }

    // ---- Galera
    const dir = mkdtempSync(join(tmpdir(), 'galera-bench-'));
    const topo = { dir, basePort: GALERA_PORT, quiet: true };
    const undo = async () => { await galera.downGalera({ ...topo, purge: true }); rmSync(dir, { recursive: true, force: true }); };
    ctx.onCleanup(undo);
    const kills: KillRun[] = [];
    let totals: KillTotals | undefined;
    let nodes: DbNodes | undefined, monitor: GaleraMonitor | undefined;
    try {
      const rows = await galera.upGalera(topo);
      await galera.waitSettled(topo); // a node that just joined is Synced but not settled: a kill right then can cost the quorum
      const port = (name: string) => rows.find((r) => r.name === name)!.port;
      const url = (name: string, db = DB) => `mysql://${ADMIN.user}:${ADMIN.password}@127.0.0.1:${port(name)}/${db}`;
      await seed(url('galera-1', ''));
      const config = loadConfig({ DB_CATALOG_MODE: 'galera', DB_GALERA_URLS: GALERA_NODES.map((n) => url(n)).join(','), REPLICA_MONITOR_INTERVAL_MS: '200' });
      const galeraNodes = (nodes = await DbNodes.connect({ ...config.db, shards: [], poolSize: 16 }));
      monitor = new GaleraMonitor(nodes, { intervalMs: config.replication.monitorIntervalMs });
      await monitor.start();
      const router = new GaleraRouter(nodes, monitor);
      if (comparing) {
        compare = await compareLoads([
          { label: 'replicated (primary + 2 GTID replicas)', router: replicated!.router, tally: tally() },
          { label: 'Galera (3 nodes, writes to one)', router, tally: tally() },
        ]);
        await replicated!.close();
      }

      // ---- node kills under writes
      const acked: { id: number; at: number }[] = [];
      let next = 10_000_000, stop = false, unavailable = 0, other = 0, lastOther: string | null = null;
      const reasons503: Record<string, number> = {}, at503: number[] = [], events: { at: number; what: string }[] = [];
      const writer = (async () => {
        while (!stop) {
          const id = ++next;
          try {
            await router.write((on) => on.query('INSERT INTO w (id, v, at) VALUES (?, 0, ?)', [id, Date.now()]));
            acked.push({ id, at: Date.now() });
          } catch (err) {
            const e = err as WriteError;
            if (e.status === 503) {
              unavailable++;
              const why = String(e.cause?.driverError?.code ?? e.cause?.code ?? e.cause?.errno ?? e.cause?.message ?? e.message).slice(0, 80);
              reasons503[why] = (reasons503[why] ?? 0) + 1;
              at503.push(Date.now());
            }
            else { other++; lastOther = e.message; }
          }
          await sleep(5);
        }
      })();
      /** Longest gap between two acknowledged writes from `from` on, through the first write acknowledged after `kill`. */
      const gapAcross = (from: number, kill: number, to: number) => {
        const after = acked.find((a) => a.at > kill);
        if (!after) return Date.now() - kill; // no write since the kill: a lower bound
        const w = acked.filter((a) => a.at >= from && a.at <= Math.max(to, after.at));
        return w.slice(1).reduce((m, a, i) => Math.max(m, a.at - w[i].at), 0);
      };
      const ackAfter = async (t: number) => { for (const e = Date.now() + 60_000; Date.now() < e && !acked.some((a) => a.at > t + 300); ) await sleep(20); };
      const killAndRejoin = async (name: string) => {
        await sleep(700);
        const t0 = Date.now();
        events.push({ at: t0, what: `kill ${name}` });
        await galera.killGaleraNode(name, topo);
        await ackAfter(Date.now());
        await sleep(300);
        const gap = gapAcross(t0 - 500, t0, Date.now());
        const r0 = Date.now();
        events.push({ at: r0, what: `start ${name}` });
        await galera.startGaleraNode(name, topo);
        events.push({ at: Date.now(), what: `${name} Synced` });
        const rejoinMs = Date.now() - r0;
        await galera.waitSettled(topo); // one failure at a time: a kill right after a rejoin cost the quorum
        return { gap, rejoinMs, transfer: galera.lastStateTransfer(name, topo) };
      };
      for (let run = 1; run <= runs; run++) {
        const reader = galeraNodes.catalog.find((n) => n !== galeraNodes.primary)!.name;
        const a = await killAndRejoin(reader);
        const writerNode = galeraNodes.primary.name;
        const b = await killAndRejoin(writerNode);
        const r: KillRun = { run, galera_outage_ms: a.gap, reader_killed: reader, rejoin_ms: a.rejoinMs, transfer: a.transfer, galera_writer_outage_ms: b.gap, writer_killed: writerNode, writer_rejoin_ms: b.rejoinMs, writer_transfer: b.transfer, writes_now_on: galeraNodes.primary.name };
        kills.push(r);
        ctx.log(`kill run ${run}: ${JSON.stringify(r)}`);
      }
      stop = true;
      await writer;
      // No acknowledged write missing on any node (all three are back and Synced).
      const ids = acked.map((a) => a.id);
      let lost = 0;
      for (const name of GALERA_NODES) {
        const c = untyped(await mysql.createConnection({ uri: url(name) }));
        const [have] = await c.query('SET STATEMENT wsrep_sync_wait = 1 FOR SELECT id FROM w WHERE id > 10000000');
        await c.end();
        const set = new Set(have.map((h: { id: unknown }) => Number(h.id)));
        lost = Math.max(lost, ids.filter((id) => !set.has(id)).length);
      }
      // When the 503s came, relative to the latest kill/start event before each (where to look when there are many).
      const after503: Record<string, number> = {};
      for (const t of at503) {
        const ev = events.filter((e) => e.at <= t).at(-1);
        const key = !ev ? 'before any event' : ev.what.endsWith('Synced') ? 'after a rejoin (Synced)' : `after a ${ev.what.split(' ')[0]}`;
        after503[key] = (after503[key] ?? 0) + 1;
      }
      totals = { writes_acked: acked.length, writes_503: unavailable, reasons_503: reasons503, after_event_503: after503, writes_lost: lost, other_errors: other, ...(lastOther ? { last_other_error: lastOther } : {}) };
    } finally {
      await monitor?.stop();
      await nodes?.close();
      await undo();
    }

    const [rep, gal] = compare;
    const cmpCols = ['write_p50_ms', 'write_p99_ms', 'writes_per_s', 'reads_per_s', 'read_p50_ms', 'ryw_read_p50_ms', 'ryw_read_p99_ms', 'ryw_stale'];
    const t1 = !comparing ? 'load comparison skipped (--compare off)' : [
      `| catalog | ${cmpCols.join(' | ')} |`,
      `|---|${cmpCols.map(() => '---:').join('|')}|`,
      ...compare.map((r) => `| ${r.catalog} | ${cmpCols.map((c) => String(r[c])).join(' | ')} |`),
    ].join('\n');
    const vals = (k: keyof KillRun) => kills.map((r) => Number(r[k])).sort((a, b) => a - b);
    const p50 = (k: keyof KillRun) => vals(k)[Math.floor((vals(k).length - 1) / 2)];
    const max = (k: keyof KillRun) => vals(k)[vals(k).length - 1];
    const killCols: (keyof KillRun)[] = ['galera_outage_ms', 'rejoin_ms', 'transfer', 'galera_writer_outage_ms', 'writer_rejoin_ms', 'writer_transfer'];
    const t2 = [
      `| run | ${killCols.join(' | ')} |`,
      `|---|${killCols.map(() => '---:').join('|')}|`,
      ...kills.map((r) => `| ${r.run} | ${killCols.map((c) => String(r[c])).join(' | ')} |`),
      `| **p50** | ${p50('galera_outage_ms')} | ${p50('rejoin_ms')} | | ${p50('galera_writer_outage_ms')} | ${p50('writer_rejoin_ms')} | |`,
      `| **max** | ${max('galera_outage_ms')} | ${max('rejoin_ms')} | | ${max('galera_writer_outage_ms')} | ${max('writer_rejoin_ms')} | |`,
    ].join('\n');
    const t = totals!;
    const t3 = `writes during the kills: ${t.writes_acked} acknowledged, ${t.writes_503} answered 503, ${t.writes_lost} lost, ${t.other_errors} other errors`;
    return {
      tables: [t1, t2, t3],
      ratios: {
        galera_outage_ms: max('galera_outage_ms'),
        galera_outage_p50_ms: p50('galera_outage_ms'),
        galera_writer_outage_ms: max('galera_writer_outage_ms'),
        galera_writer_outage_p50_ms: p50('galera_writer_outage_ms'),
        ...(comparing ? {
          write_p50_galera_vs_replicated: Math.round((Number(gal.write_p50_ms) / Number(rep.write_p50_ms)) * 100) / 100,
          reads_per_s_galera_vs_replicated: Math.round((Number(gal.reads_per_s) / Number(rep.reads_per_s)) * 100) / 100,
          ryw_read_p50_galera_vs_replicated: Math.round((Number(gal.ryw_read_p50_ms) / Number(rep.ryw_read_p50_ms)) * 100) / 100,
          ryw_stale: Number(rep.ryw_stale) + Number(gal.ryw_stale),
        } : {}),
        writes_lost: t.writes_lost,
        other_errors: t.other_errors,
      },
      details: { compare, kills, totals: t, durationMs, suspectMs: Number(process.env.STACK_GALERA_SUSPECT_MS || 2000), ports: { replicated: CATALOG_PORT, galera: GALERA_PORT } },
    };
  },
} satisfies Scenario;
